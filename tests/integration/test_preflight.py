"""Bad settings are refused by preflight with a message naming host and variable, before any node changes.

Runs playbooks/setup.yml against a fresh 2-node sandbox for each case and compares a fingerprint
of every node (files under /etc, /opt, /var/lib; installed packages; firewall rules; units)
before and after. Needs root (`make integration`).
"""

import json
import os
import subprocess
import sys

import catalogue
import pytest
import sandbox
import yaml
from conftest import run_playbook

NODES = ["node1", "node2"]
FINGERPRINT = (
    "find /etc /opt /var/lib -xdev \\( -path /var/lib/systemd -o -path /var/lib/apt/lists \\) -prune "
    "-o -printf '%p %s %m %u %T@\\n' | sort | sha256sum; sha256sum /var/lib/dpkg/status; "
    "nft -s list ruleset 2>/dev/null | sha256sum; systemctl list-unit-files --no-legend 'torchrun*' | sha256sum"
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")

CASES = {case["mistake"]: case for case in catalogue.load()}


def playbook(*args):
    return run_playbook("setup", *args)


def fingerprints():
    prints = {}
    for name in NODES:
        proc = subprocess.run(sandbox.ssh_command(name) + [FINGERPRINT], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        prints[name] = proc.stdout
    return prints


@pytest.fixture(scope="module")
def fresh_cluster():
    subprocess.run([sys.executable, sandbox.__file__, "down"], capture_output=True, check=False)
    up = subprocess.run([sys.executable, sandbox.__file__, "up", "--nodes", "2"], capture_output=True, text=True, check=False)
    assert up.returncode == 0, up.stderr
    yield fingerprints()
    subprocess.run([sys.executable, sandbox.__file__, "down"], capture_output=True, check=False)


def on_nodes(commands):
    for name, command in (commands or {}).items():
        proc = subprocess.run(sandbox.ssh_command(name) + [command], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, "%s: %s: %s" % (name, command, proc.stderr)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_before_any_change(fresh_cluster, name, tmp_path):
    case = CASES[name]
    args = ["-e", json.dumps(case.get("vars") or {})]
    if case.get("host_vars"):
        extra_inventory = tmp_path / "host_vars.yml"
        extra_inventory.write_text(yaml.safe_dump({"all": {"hosts": case["host_vars"]}}))
        args += ["-i", str(extra_inventory)]
    on_nodes(case.get("setup"))
    try:
        proc = playbook(*args)
    finally:
        on_nodes(case.get("cleanup"))
    out = " ".join((proc.stdout + proc.stderr).split())  # undo Ansible's line wrapping
    assert proc.returncode != 0, out[-3000:]
    assert case["message"] in out, out[-3000:]
    assert fingerprints() == fresh_cluster


def test_every_problem_is_reported_at_once(fresh_cluster):
    proc = playbook("-e", json.dumps({"torchrun_nproc_per_node": 0, "torchrun_master_port": 52500, "torchrun_nnodes": "3"}))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "preflight found 4 problem(s); nothing was changed" in out, out[-3000:]
    for problem in ('node1: torchrun_nproc_per_node=0', 'node2: torchrun_nproc_per_node=0',
                    'node1: torchrun_master_port=52500 lies inside', 'node1: torchrun_nnodes=3 but'):
        assert problem in out
    assert fingerprints() == fresh_cluster


def test_good_inventory_passes_preflight_and_changes_nothing(fresh_cluster):
    proc = playbook("--tags", "preflight")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "preflight: 2 node(s) in group trainers, master node1 (198.18.0.11:29500)" in proc.stdout
    assert fingerprints() == fresh_cluster
