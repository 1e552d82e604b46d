"""The sandbox wiring: real systemd, real sshd, static addresses, packages from the host only."""

import os
import sys

import pytest
import testinfra.utils.ansible_runner

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "sandbox"))
import sandbox  # noqa: E402  pylint: disable=wrong-import-position  (the mirror this machine uses)

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
HOSTS = RUNNER.get_hosts("all")
EXPECTED_ADDR = {"node1": "198.18.0.11", "node2": "198.18.0.12", "outsider": "198.18.0.250"}

testinfra_hosts = HOSTS


def journal(host, unit):
    return host.run("journalctl -u %s --no-pager -n 30" % unit).stdout


def test_inventory_lists_two_nodes_and_the_outsider():
    assert RUNNER.get_hosts("trainers") == ["node1", "node2"]
    assert RUNNER.get_hosts("outsiders") == ["outsider"]


def test_systemd_is_pid_1_and_running(host):
    assert host.run("cat /proc/1/comm").stdout.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), host.run("systemctl --failed --no-pager").stdout


def test_sshd_is_active(host):
    assert host.service("ssh").is_running, journal(host, "ssh")


def test_hostname_and_static_address(host):
    name = host.backend.get_hostname()
    assert host.run("hostname").stdout.strip() == name
    addrs = host.interface("host0").addresses
    assert EXPECTED_ADDR[name] in addrs


def test_no_route_out_of_the_sandbox(host):
    assert host.run("ip -4 route show default").stdout.strip() == ""
    # A public address has no route: the kernel refuses before any packet leaves.
    assert host.run("ip route get 192.0.2.1").rc != 0


def test_package_came_through_the_host_proxy(host):
    assert host.package("nftables").is_installed
    proxy = host.file("/etc/apt/apt.conf.d/01sandbox-proxy").content_string
    assert "http://198.18.0.1:3142/" in proxy


def ask(host, port, request):
    """The status line the host's server answers to one raw HTTP request from this node."""
    return host.run("timeout 20 bash -c 'exec 3<>/dev/tcp/198.18.0.1/%d; printf \"%s\\r\\n\\r\\n\" >&3; head -n 1 <&3'"
                    % (port, request)).stdout.split(" ")[1:2]


def test_the_proxy_serves_only_this_machines_apt_sources(host):
    # apt-cacher-ng with ForceManaged: a host the machine's APT sources do not name is refused, and
    # no CONNECT tunnel opens; the archive itself answers.
    mirror = sandbox.node_uri(sandbox.archive_mirror(sandbox.apt_sources())).rstrip("/")
    assert ask(host, 3142, "GET %s/dists/bookworm/InRelease HTTP/1.0" % mirror) == ["200"]
    assert ask(host, 3142, "GET http://example.com/ HTTP/1.0") == ["403"]
    assert ask(host, 3142, "CONNECT example.com:443 HTTP/1.0") == ["403"]


def test_the_wheelhouse_is_listed_for_pip(host):
    assert ask(host, 3143, "GET / HTTP/1.0") == ["200"]


@pytest.mark.parametrize("peer", sorted(EXPECTED_ADDR))
def test_every_host_reaches_every_sshd(host, peer):
    cmd = host.run("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/22 && head -c 4 <&3'" % EXPECTED_ADDR[peer])
    assert cmd.stdout == "SSH-", cmd.stderr
