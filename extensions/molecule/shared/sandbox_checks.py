"""What the molecule scenarios check on the sandbox nodes, shared by their testinfra files.

The inventory folder: molecule's own file lists the names; the sandbox's hosts.yml linked beside
it holds the addresses and SSH settings.
"""

import os
import sys
import time

import pytest
import testinfra
import testinfra.utils.ansible_runner

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "sandbox"))
import harness  # noqa: E402  pylint: disable=wrong-import-position  (the sandbox harness the test suites share)

INVENTORY = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
NODES = RUNNER.get_hosts("trainers")
ADDR = {"node1": "198.18.0.11", "node2": "198.18.0.12", "outsider": "198.18.0.250"}
UNIT = "torchrun-train.service"
JOB_USER = "torchrun-train"
MASTER_PORT = 29500
COLLECTIVE_PORT = 52100


def node(name):
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, INVENTORY))


def journal(host, lines=40, unit=UNIT):
    return host.run("journalctl -u %s --no-pager -n %d -o cat" % (unit, lines)).stdout


def prop(host, name):
    return host.run("systemctl show -p %s --value %s" % (name, UNIT)).stdout.strip()


def connect(src, dst, port):
    """0: connected; 124: timed out (dropped); anything else: refused, rejected or no route."""
    return harness.connect(src, ADDR[dst], port)


def reboot(name):
    """A real reboot of the node: clean poweroff, boot on the same disk."""
    harness.tool("reboot", name, timeout=300)


def setup(*args):
    """Run setup.yml on the scenario's nodes with extra arguments."""
    return harness.playbook("setup", *args, timeout=600)


def remove(*args):
    """Run remove.yml on the scenario's nodes with extra arguments."""
    return harness.playbook("remove", *args, timeout=600)


def start_listening_job():
    """Rank 0 alone: its rendezvous store listens on MASTER_PORT, waiting for node2, plus a collective-range listener."""
    master = node("node1")
    master.run("systemctl start %s" % UNIT)
    master.run("systemd-run --unit=verify-listener --collect -p RuntimeMaxSec=120 /usr/bin/python3 -c "
               "'import socket; s=socket.create_server((\"198.18.0.11\", %d)); [s.accept()[0].close() for _ in iter(int, 1)]'"
               % COLLECTIVE_PORT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listening = master.run("ss -Hltn").stdout
        if ":%d " % MASTER_PORT in listening and ":%d " % COLLECTIVE_PORT in listening:
            return
        time.sleep(0.5)
    pytest.fail("nothing listens on the master:\n" + master.run("ss -ltn").stdout + journal(master))


def stop_listening_job():
    node("node1").run("systemctl stop %s verify-listener" % UNIT)


@pytest.fixture()
def listening_job():
    start_listening_job()
    yield
    stop_listening_job()


def only_peers_connect(blocked_rc=None):
    """node2 reaches both ports of node1; the outsider reaches neither (dropped: rc 124 when blocked_rc is 124)."""
    for port in (MASTER_PORT, COLLECTIVE_PORT):
        assert connect("node2", "node1", port) == 0, "peer node2 cannot reach node1:%d" % port
        rc = connect("outsider", "node1", port)
        assert rc != 0 and (blocked_rc is None or rc == blocked_rc), "outsider -> node1:%d gave rc %d" % (port, rc)


def only_the_jobs_user_connects_locally():
    """On node1 itself the store opens to the job's user only, not to root or any other account,
    over loopback and over the node's own address (the output chain of the own nftables table)."""
    master = node("node1")
    for address in ("127.0.0.1", ADDR["node1"]):
        probe = "timeout 4 bash -c 'exec 3<>/dev/tcp/%s/%d'" % (address, MASTER_PORT)
        assert master.run("runuser -u %s -- %s" % (JOB_USER, probe)).rc == 0, "%s cannot reach its store at %s" % (JOB_USER, address)
        for user in ("root", "nobody"):
            rc = master.run("runuser -u %s -- %s" % (user, probe)).rc
            assert rc not in (0, 124), "%s -> %s:%d gave rc %d (not refused)" % (user, address, MASTER_PORT, rc)
