"""Bad settings are refused with a message naming host and variable, before any node changes.

Every catalogue case is checked without nodes in tests/unit/plugins/test_validate.py; here run the
cases marked `sandbox: true`: those that need real node state (a listener, a second sshd, a
pre-set NODE_RANK, an existing account, a site table, another job, no GPU, a missing script) and
every name case, against a fresh 2-node sandbox. Each compares a fingerprint of every node (files
under /etc, /opt, /var/lib; installed packages; firewall rules; units) right before and after
the play, and checks that no file planted by a shell command in a name exists. Also: the operate
playbooks validate what they use, and SSH on another port is never locked out.
Needs root (`make integration`).
"""

import json
import os
import subprocess
import time

import catalogue
import harness
import pytest
import sandbox
import yaml
from conftest import run_playbook

NODES = ["node1", "node2"]
FINGERPRINT = (
    "find /etc /opt /var/lib -xdev \\( -path /var/lib/systemd -o -path /var/lib/apt/lists \\) -prune "
    "-o -printf '%p %s %m %u %T@\\n' | sort | sha256sum; sha256sum /var/lib/dpkg/status; "
    "nft -s list ruleset 2>/dev/null | sha256sum; systemctl list-unit-files --no-legend 'torchrun*' | sha256sum; "
    "ls -d /root/pwned* 2>/dev/null || true"  # what a shell command in a name would have left
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")

CASES = {case["mistake"]: case for case in catalogue.load() if case.get("sandbox")}


def on(node, command, timeout=60):
    return subprocess.run(sandbox.ssh_command(node) + [command], capture_output=True, text=True, timeout=timeout, check=False)


def fingerprints():
    prints = {}
    for name in NODES:
        proc = on(name, FINGERPRINT)
        assert proc.returncode == 0, proc.stderr
        assert "pwned" not in proc.stdout, "%s: a shell command from a setting ran: %s" % (name, proc.stdout)
        prints[name] = proc.stdout
    return prints


def messages(proc):
    """Every msg line of the run (the json callback keeps each exactly as the play made it)."""
    try:
        tree = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        return [proc.stdout + proc.stderr]
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "msg":
                    found.extend(value if isinstance(value, list) else str(value).splitlines())
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(tree)
    return [str(m) for m in found]


def play(name, *args):
    return run_playbook(name, *args, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})


@pytest.fixture(scope="module")
def fresh_cluster():
    with harness.cluster(2):
        yield fingerprints()


def on_nodes(commands):
    for name, command in (commands or {}).items():
        proc = on(name, command)
        assert proc.returncode == 0, "%s: %s: %s" % (name, command, proc.stderr)


# A case refused on the controller (stage: inventory, which test_validate keeps true) never reaches a
# node: make test-slow runs it here too; make test runs the cases that need what the nodes hold.
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if case.get("stage") == "inventory" else name
                                  for name, case in CASES.items()])
def test_bad_input_is_refused_before_any_change(fresh_cluster, name, tmp_path):
    case = CASES[name]
    args = ["-e", json.dumps(case.get("vars") or {})]
    if case.get("host_vars"):
        extra_inventory = tmp_path / "host_vars.yml"
        extra_inventory.write_text(yaml.safe_dump({"all": {"hosts": case["host_vars"]}}))
        args += ["-i", str(extra_inventory)]
    on_nodes(case.get("setup"))
    try:
        before = fingerprints()
        proc = play("setup", *args)
        after = fingerprints()
    finally:
        on_nodes(case.get("cleanup"))
    found = messages(proc)
    assert proc.returncode != 0, found[-20:]
    assert any(case["message"] in message for message in found), "case %r:\n%s" % (name, "\n".join(found)[-3000:])
    assert after == before  # the play changed nothing (a case's own setup and cleanup may)


@pytest.mark.parametrize("name", ["launch", "stop", "status", "logs", "stacks", "healthcheck"])
def test_operate_playbooks_validate_before_touching_a_node(fresh_cluster, name):
    # stacks.yml used to build a shell command from the job name.
    before = fingerprints()
    proc = play(name, "-e", json.dumps({"torchrun_job": "x; touch /root/pwned-%s" % name}))
    found = messages(proc)
    assert proc.returncode != 0
    assert any(m.startswith("node1: torchrun_job=x; touch /root/pwned-%s must be" % name) for m in found), found[-20:]
    assert fingerprints() == before


@pytest.mark.parametrize("name", ["launch", "healthcheck", "train"])
def test_a_play_that_leaves_out_nodes_is_refused_within_seconds(fresh_cluster, name):
    # launch.yml --limit node1 used to start node1 alone, which then waited its whole join timeout.
    before = fingerprints()
    start = time.monotonic()
    proc = play(name, "--limit", "node1")
    took = time.monotonic() - start
    found = messages(proc)
    assert proc.returncode != 0
    assert any(m.startswith("node1: this play leaves out node2 of group trainers") for m in found), found[-20:]
    assert took < 60, took  # the controller alone decides; no join timeout is waited
    assert fingerprints() == before


def test_good_inventory_passes_preflight_and_changes_nothing(fresh_cluster):
    before = fingerprints()
    proc = run_playbook("setup", "--tags", "preflight")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "preflight: 2 node(s) in group trainers, master node1 (198.18.0.11:29500)" in proc.stdout
    assert fingerprints() == before


def test_ssh_on_another_port_stays_open_after_the_firewall(fresh_cluster, tmp_path):
    """A site whose sshd listens on 2222 (and Ansible connects there): the next run still gets in, with the
    strict firewall (the default leaves SSH as the site has it)."""
    for node in NODES:
        on(node, "systemd-run --unit=sshd-2222 --collect /usr/sbin/sshd -D -p 2222")
    known = tmp_path / "known_hosts"  # the nodes' keys, as ssh looks them up on port 2222
    known.write_text("".join("[%s]:2222 %s\n" % (line.split()[0].split(",")[1], " ".join(line.split()[1:]))
                             for line in (sandbox.STATE / "known_hosts").read_text().splitlines() if line.strip()))
    inventory = tmp_path / "port.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {node: {
        "ansible_port": 2222, "ansible_ssh_common_args": "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes" % known}
        for node in NODES}}}))
    try:
        first = run_playbook("setup", "-i", str(inventory), "--tags", "firewall", "-e", "firewall_mode=strict")
        assert first.returncode == 0, first.stdout[-3000:]
        for node in NODES:
            ruleset = on(node, "nft list table inet torchrun").stdout
            assert "tcp dport { 22, 2222 } accept" in ruleset, ruleset
        # A new connection on the second port (no ControlPersist master left from the first run).
        again = run_playbook("ping", "-i", str(inventory), env={"ANSIBLE_SSH_ARGS": "-o ControlMaster=no"}, timeout=120)
        assert again.returncode == 0, again.stdout[-3000:]
    finally:
        for node in NODES:
            on(node, "systemctl stop sshd-2222")
        remove_the_firewall()


def remove_the_firewall():
    """Take what `setup.yml --tags firewall` installed off every node again (the next tests start from fresh nodes)."""
    for node in NODES:
        on(node, "systemctl stop torchrun-firewall-guard torchrun-firewall; "
                 "rm -rf /etc/torchrun /etc/systemd/system/torchrun-* /etc/sysctl.d/60-torchrun.conf /usr/local/sbin/torchrun-firewall-guard; "
                 "systemctl daemon-reload")


def test_a_hostile_host_name_is_refused_before_any_node_changes(fresh_cluster, tmp_path):
    # A host name with a line break would have been a line of the job's env file and a rule of its nft file.
    name = "node1\nLD_PRELOAD=/tmp/x.so"
    inventory = tmp_path / "hostile.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"hostile": {"hosts": {
        name: {"ansible_host": "198.18.0.11"}, "node2": {"ansible_host": "198.18.0.12"}}}}}}))
    before = fingerprints()
    proc = play("setup", "-i", str(inventory), "-e", "torchrun_group=hostile")
    found = messages(proc)
    assert proc.returncode != 0
    assert any(m.startswith("%r: the inventory name %r must be a host name" % (name, name)) for m in found), found[-20:]
    assert fingerprints() == before


@pytest.mark.slow  # 19 s: make test-slow (which socket's owner is the real sshd is unit-tested on node_probe's readers)
def test_a_listener_that_only_calls_itself_sshd_is_not_kept_open(fresh_cluster):
    """SSH stays open on the ports the real sshd (root's /usr/sbin/sshd) listens on, never on a user's look-alike."""
    on("node1", "id mallory >/dev/null 2>&1 || useradd -m -u 3000 mallory; cp /usr/bin/python3 /home/mallory/sshd; "
                "systemd-run --unit=fake-sshd --collect -p User=mallory -p RuntimeMaxSec=120 /home/mallory/sshd -c "
                "'import socket; s=socket.create_server((\"\", 2223)); [s.accept()[0].close() for _ in iter(int, 1)]'")
    try:
        assert "sshd" in on("node1", "ss -Hltnp 'sport = :2223'").stdout  # it does call itself sshd
        proc = run_playbook("setup", "--tags", "firewall", "-e", "firewall_mode=strict")
        assert proc.returncode == 0, proc.stdout[-3000:]
        ruleset = on("node1", "nft list chain inet torchrun input").stdout
        assert 'tcp dport 22 accept comment "SSH stays open"' in ruleset and "2223" not in ruleset, ruleset
        assert harness.connect("outsider", "198.18.0.11", 2223, seconds=2) != 0  # the outsider does not get in there
        assert harness.connect("outsider", "198.18.0.11", 22, seconds=2) == 0
    finally:
        on("node1", "systemctl stop fake-sshd; rm -f /home/mallory/sshd")
        remove_the_firewall()


def site_exporter():
    """A service the site runs on node1 before setup: a node exporter on 9100, reached by the outsider."""
    on("node1", "systemd-run --unit=site-exporter --collect -p RuntimeMaxSec=300 /usr/bin/python3 -c "
                "'import socket; s=socket.create_server((\"\", 9100)); [s.accept()[0].close() for _ in iter(int, 1)]'")
    assert harness.connect("outsider", "198.18.0.11", 9100, seconds=2) == 0


def firewall_setup(extra=None):
    proc = run_playbook("setup", "--tags", "firewall", "-e", json.dumps(extra or {}))
    assert proc.returncode == 0, proc.stdout[-3000:]
    return " ".join(proc.stdout.split())


def test_the_sites_services_stay_reachable_unless_the_strict_firewall_is_chosen(fresh_cluster):
    """A service the site runs before setup (a node exporter on 9100) is reached by the outsider after setup;
    firewall_mode=strict cuts it off, named by preflight."""
    site_exporter()
    try:
        out = firewall_setup()
        assert harness.connect("outsider", "198.18.0.11", 9100, seconds=2) == 0, "the default firewall cut the site's service off"
        assert harness.connect("outsider", "198.18.0.11", 52100, seconds=2) == 124  # the job's ports: dropped for non-peers
        assert "WARNING" not in out
        out = firewall_setup({"firewall_mode": "strict"})
        assert ("WARNING node1: firewall_mode=strict drops every port but SSH, the ports of the jobs and firewall_allow, which cuts "
                "python3 (9100) off from other hosts") in out, out[-3000:]
        assert harness.connect("outsider", "198.18.0.11", 9100, seconds=2) == 124
    finally:
        on("node1", "systemctl stop site-exporter")
        remove_the_firewall()


@pytest.mark.slow  # 55 s: make test-slow (firewall_allow's rules are unit-rendered; the strict cut itself is in make test, above)
def test_a_strict_firewall_lets_in_the_sources_firewall_allow_lists_and_the_default_brings_the_sites_service_back(fresh_cluster):
    site_exporter()
    try:
        firewall_setup({"firewall_mode": "strict", "firewall_allow": [{"port": 9100, "from": ["198.18.0.250"]}]})
        assert harness.connect("outsider", "198.18.0.11", 9100, seconds=2) == 0
        assert harness.connect("node2", "198.18.0.11", 9100, seconds=2) == 124  # only the sources listed
        firewall_setup()  # back to the default, as a node set up by 0.1.0 (strict then) is migrated: the site's port is back
        assert harness.connect("outsider", "198.18.0.11", 9100, seconds=2) == 0
    finally:
        on("node1", "systemctl stop site-exporter")
        remove_the_firewall()
