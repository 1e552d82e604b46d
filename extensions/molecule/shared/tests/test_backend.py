"""A site firewall manager (firewalld or ufw, the scenario's name) is active with default-deny:
the collection adds the job's rules to it, the job trains, only the peers get in, SSH stays
open, and the rules outlive a reload of the firewall and a reboot of the node."""

import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "extensions", "molecule", "shared"))
from sandbox_checks import (  # noqa: E402  pylint: disable=wrong-import-position
    NODES, journal, node, only_peers_connect, prop, reboot, start_listening_job, stop_listening_job,
)

BACKEND = os.environ["MOLECULE_SCENARIO_NAME"]
RELOAD = {"firewalld": "firewall-cmd --reload", "ufw": "ufw reload"}[BACKEND]

testinfra_hosts = NODES


def test_job_trained_on_every_node(host):
    assert prop(host, "Result") == "success", journal(host)
    assert re.search(r"^final: world_size=4 nodes=2 ", journal(node("node1")), re.M)


def test_rules_went_into_the_active_manager(host):
    assert "table inet torchrun" not in host.run("nft list tables").stdout
    if BACKEND == "firewalld":
        assert host.run("firewall-cmd --state").stdout.strip() == "running"
        rules = host.run("firewall-cmd --list-rich-rules").stdout
        assert 'source ipset="torchrun-train" port port="29500" protocol="tcp" accept' in rules
        assert 'source ipset="torchrun-train" port port="52000-53999" protocol="tcp" accept' in rules
        entries = host.run("firewall-cmd --ipset=torchrun-train --get-entries").stdout.split()
        assert sorted(entries) == ["198.18.0.11", "198.18.0.12"]
    else:
        status = host.run("ufw status").stdout
        assert status.startswith("Status: active")
        ours = sorted(" ".join(line.split()) for line in status.splitlines() if "# torchrun job train" in line)
        assert ours == ["%s ALLOW %s # torchrun job train" % (port, peer)
                        for port in ("29500/tcp", "52000:53999/tcp") for peer in ("198.18.0.11", "198.18.0.12")]


def test_the_sites_own_rules_are_kept(host):
    if BACKEND == "firewalld":
        assert "ssh" in host.run("firewall-cmd --list-services").stdout.split()
    else:
        assert "22/tcp" in host.run("ufw status").stdout


@pytest.mark.parametrize("disturb", ["none", "reload", "reboot"])
def test_only_peers_reach_the_job(disturb):
    if disturb == "reload":
        assert node("node1").run(RELOAD).rc == 0
    elif disturb == "reboot":
        reboot("node1")
    start_listening_job()
    try:
        only_peers_connect()
    finally:
        stop_listening_job()


def test_ssh_stays_open_to_everyone():
    assert node("outsider").run("timeout 4 bash -c 'exec 3<>/dev/tcp/198.18.0.11/22 && head -c 4 <&3'").stdout == "SSH-"


def test_forcing_nftables_beside_the_manager_is_refused_before_any_change():
    root = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    before = node("node1").run("nft -s list ruleset | sha256sum").stdout
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "playbooks/setup.yml", "-i", "inventories/sandbox",
         "-e", "firewall_backend=nftables"],
        cwd=root, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(root, "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
        capture_output=True, text=True, timeout=600, check=False)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert ("node1: firewall_backend=nftables but %s is active, whose rules would still drop the job's traffic" % BACKEND) in out, out[-2000:]
    assert node("node1").run("nft -s list ruleset | sha256sum").stdout == before
