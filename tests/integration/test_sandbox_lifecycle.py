"""The sandbox tool on real nodes: up, a no-op re-run, recovery from a crash, a clean down.

Boots a 1-node sandbox (plus the outsider) with the real image, so it needs root, debootstrap
and systemd-nspawn (`make integration` installs them). Tears down any running sandbox.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import harness
import pytest
import sandbox

TOOL = harness.TOOL

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


def tool(*args):
    return harness.tool(*args, timeout=600).stdout


def leftovers():
    """Everything a sandbox can leave behind on the host; all empty when it is down."""
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if str(sandbox.STATE) in line]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return {
        "mounts": mounts,
        "links": [l for l in links.splitlines() if sandbox.BRIDGE in l or " vb-" in l],
        # A reaped-later zombie holds no mount, link or namespace: only live processes count.
        "processes": [p for p in procs if any(needle in p for needle in ["systemd-nspawn"] + [s[1] for s in sandbox.SERVICES.values()])
                      and "<defunct>" not in p],
        "node dirs": sandbox.existing_nodes(),
        "inventory": [str(sandbox.DEFAULT_INVENTORY)] if sandbox.DEFAULT_INVENTORY.exists() else [],
        "cgroups": [str(g) for name in ("node1", "node2", "outsider") for g in sandbox.cgroup_dirs(name) if g.exists()],
    }


def init_of(name):
    """The PID of the node's systemd (the child of its nspawn)."""
    pid = (sandbox.STATE / "nodes" / name / "pid").read_text().strip()
    return subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True, check=True).stdout.split()[0]


@pytest.fixture(scope="module")
def one_node():
    tool("down")
    out = tool("up", "--nodes", "1")
    yield out
    tool("down")


def test_up_boots_node_and_outsider(one_node):
    assert "started node1, outsider" in one_node
    status = subprocess.run(TOOL + ["status"], capture_output=True, text=True)
    assert status.returncode == 0, status.stdout
    assert [l.split()[0] for l in status.stdout.splitlines()] == ["node1", "outsider", "apt-cacher-ng", "wheelhouse"]
    inventory = sandbox.DEFAULT_INVENTORY.read_text()
    assert "node1:\n          ansible_host: 198.18.0.11" in inventory
    assert "outsider:\n          ansible_host: 198.18.0.250" in inventory
    # Shared storage, as a site's NFS: one host folder in every cluster node, not in the outsider.
    assert harness.on("node1", "stat -c %a /srv/shared").stdout.strip() == "1777"
    assert harness.on("outsider", "test -e /srv/shared").returncode != 0


def test_each_node_has_a_cgroup_tree_of_its_own(one_node):
    # Shared, one node's systemd removes the other's unit cgroups (seen: 219/CGROUP on reload).
    trees = {}
    for name in ("node1", "outsider"):
        lines = Path("/proc/%s/cgroup" % init_of(name)).read_text().splitlines()
        trees[name] = [l.split(":", 2)[2] for l in lines if l.startswith("0::") or ":name=systemd:" in l]
        assert trees[name] and all(t.startswith("/%s/%s/" % (sandbox.CGROUP_GROUP, name)) for t in trees[name]), lines


def test_second_up_is_a_no_op(one_node):
    before = (sandbox.STATE / "nodes" / "node1" / "pid").read_text()
    assert "nothing to do" in tool("up", "--nodes", "1")
    assert (sandbox.STATE / "nodes" / "node1" / "pid").read_text() == before


@pytest.mark.slow  # make test-slow: the sandbox's own recovery (every other test boots and stops it)
def test_up_recovers_a_crashed_node(one_node):
    pid = int((sandbox.STATE / "nodes" / "node1" / "pid").read_text())
    orphan = init_of("node1")
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    assert Path("/proc/%s" % orphan).exists()  # the machine outlives its nspawn
    assert subprocess.run(TOOL + ["status"], capture_output=True).returncode == 1
    out = tool("up", "--nodes", "1")
    assert "started node1" in out and "outsider" not in out.split("started", 1)[1]
    assert subprocess.run(TOOL + ["status"], capture_output=True).returncode == 0
    assert not Path("/proc/%s" % orphan).exists(), "the crashed node's systemd was left running"


@pytest.mark.slow  # make test-slow: the sandbox's own resizing
def test_up_resizes(one_node):
    out = tool("up", "--nodes", "2")
    assert "started node2" in out
    out = tool("up", "--nodes", "1")
    assert "stopping node2" in out
    assert sandbox.existing_nodes() == ["node1", "outsider"]


def test_down_leaves_nothing(one_node):
    tool("down")
    assert leftovers() == {"mounts": [], "links": [], "processes": [], "node dirs": [], "inventory": [], "cgroups": []}
    assert "nothing was running" in tool("down")
