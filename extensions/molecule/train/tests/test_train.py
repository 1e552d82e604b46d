"""The main job on the sandbox: it trained across both nodes, and only the peers can reach it."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "extensions", "molecule", "shared"))
from sandbox_checks import (  # noqa: E402  pylint: disable=wrong-import-position
    ADDR, NODES, UNIT, journal, listening_job, node, only_peers_connect, only_the_jobs_user_connects_locally, prop, reboot,
    start_listening_job, stop_listening_job,
)

testinfra_hosts = NODES
assert listening_job  # a fixture, used by name


def test_job_ended_successfully_on_every_node(host):
    assert prop(host, "Result") == "success", journal(host)
    assert prop(host, "ExecMainStatus") == "0", journal(host)


def test_rank0_reports_world_size_four_across_two_nodes():
    out = journal(node("node1"))
    assert re.search(r"^\[rank0\]: final: world_size=4 nodes=2 epochs=3 loss=[0-9.]+ ", out, re.M), out


def test_every_rank_joined_with_the_right_shape():
    joined = []
    for name in NODES:
        joined += re.findall(r"joined: node (\d+), local rank (\d+), world size 4 \(2 node\(s\) x 2\), cpu, restart 0", journal(node(name), 200))
    assert sorted(joined) == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]


def test_unit_carries_the_inventory_rank(host):
    rank = NODES.index(host.backend.get_hostname())
    execstart = host.file("/etc/systemd/system/" + UNIT).content_string
    assert '"--node-rank=%d"' % rank in execstart
    assert '"--nnodes=2"' in execstart and '"--nproc-per-node=2"' in execstart
    assert '"--master-addr=198.18.0.11"' in execstart and '"--master-port=29500"' in execstart
    assert '"--local-addr=%s"' % ADDR[host.backend.get_hostname()] in execstart


def test_unit_runs_as_the_job_user_with_its_environment(host):
    assert prop(host, "User") == "torchrun-train"
    assert prop(host, "KillMode") == "mixed"
    env = host.file("/etc/torchrun/train.env")
    assert (env.user, env.group, env.mode) == ("root", "torchrun-train", 0o640)
    assert "GLOO_SOCKET_IFNAME=host0\n" in env.content_string
    assert not re.search(r"^(NODE_RANK|RANK|WORLD_SIZE|MASTER_ADDR|MASTER_PORT)=", env.content_string, re.M)


def test_traps_present_and_the_job_used_the_cluster_interface(host):
    name = host.backend.get_hostname()
    assert host.run("getent hosts %s" % name).stdout.split()[0] == "127.0.1.1"
    if name == "node1":
        assert host.interface("docker0").exists
    assert "GLOO_SOCKET_IFNAME=host0\n" in host.file("/etc/torchrun/train.env").content_string


def test_checkpoint_kept_on_every_node(host):
    ckpt = host.file("/var/lib/torchrun/train/checkpoints/last.ckpt")
    assert ckpt.exists and ckpt.user == "torchrun-train"


def test_kernel_ephemeral_range_is_the_collective_range(host):
    assert host.sysctl("net.ipv4.ip_local_port_range") == "52000 53999" or \
        host.run("sysctl -n net.ipv4.ip_local_port_range").stdout.split() == ["52000", "53999"]


def test_master_and_probe_ports_are_reserved(host):
    assert host.run("sysctl -n net.ipv4.ip_local_reserved_ports").stdout.strip() == "29500,52000"


def test_own_table_loaded_and_site_table_untouched(host):
    tables = host.run("nft list tables").stdout
    assert "table inet torchrun" in tables and "table inet site_rules" in tables
    assert host.service("torchrun-firewall").is_enabled


def test_only_peers_reach_a_listening_job(listening_job):
    only_peers_connect(blocked_rc=124)
    only_the_jobs_user_connects_locally()


def test_ssh_stays_open_to_everyone():
    assert node("outsider").run("timeout 4 bash -c 'exec 3<>/dev/tcp/198.18.0.11/22 && head -c 4 <&3'").stdout == "SSH-"


def test_rules_survive_an_nftables_restart():
    # Debian's nftables.conf starts with `flush ruleset`; nftables.service's drop-in loads the
    # collection's table again right after it (and the guard would, too).
    host = node("node1")
    host.run("systemctl restart nftables.service")
    # systemctl returns once nftables.service is up, its ExecStartPost included.
    deadline = time.monotonic() + 30
    while "table inet torchrun" not in host.run("nft list tables").stdout:
        assert time.monotonic() < deadline, host.run("systemctl status torchrun-firewall.service").stdout
        time.sleep(0.5)
    start_listening_job()
    try:
        only_peers_connect(blocked_rc=124)
    finally:
        stop_listening_job()


def test_rules_and_ranges_survive_a_reboot():
    reboot("node1")
    host = node("node1")
    assert host.run("sysctl -n net.ipv4.ip_local_port_range").stdout.split() == ["52000", "53999"]
    start_listening_job()
    try:
        only_peers_connect(blocked_rc=124)
    finally:
        stop_listening_job()
