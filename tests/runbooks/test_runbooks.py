"""Every command of the runbooks (docs/runbooks/*.md) runs against the sandbox.

The `bash` blocks of a runbook run in order as one script (`set -euo pipefail`) from the
checkout, with `inventories/lab` swapped for `inventories/sandbox`. SETUP puts the sandbox in the
runbook's situation first (the runbook's `<!-- test-setup: ... -->` comment says the same in
words); CHECKS are what the runbook says you see when it worked. The runbooks share one 2-node
sandbox and run in the order of RUNBOOKS. Needs root: `make test-runbooks`.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "sandbox"))
import harness  # noqa: E402
import sandbox  # noqa: E402

DOCS = ROOT / "docs" / "runbooks"
BIN = Path(sys.executable).parent
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", PATH="%s:%s" % (BIN, os.environ["PATH"]),
           SANDBOX="%s %s" % (sys.executable, sandbox.__file__))
SLOW_JOB = '{"job_wait": false, "torchrun_script_args": ["--epochs", "300", "--sleep-per-epoch", "0.5"]}'


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


# The example lab's names, as the sandbox spells them.
SWAPS = (("inventories/lab", "inventories/sandbox"), ("gpu-node-", "node"), ("wheels.lab.internal", sandbox.HOST_ADDR),
         ("/mnt/nfs", sandbox.SHARED_MOUNT))
AIRGAP_LEFTOVERS = "wheelhouse airgap-http.log inventories/sandbox/group_vars/trainers.yml"
AIRGAP_SERVER = "[h]ttp.server 8000 --bind " + sandbox.HOST_ADDR  # [h]: pkill -f must not match its own shell
PIECE = re.compile(r"^```bash\n(.*?)^```$|<!-- test-step: (.*?) -->", flags=re.S | re.M)


def blocks(path):
    """The runbook's bash blocks, in order, for the sandbox; a `<!-- test-step: CMD -->` comment
    stands where a person does something no command can (rack a server, edit the inventory) and
    runs CMD there instead ($SANDBOX is the sandbox tool)."""
    found = []
    for block, step in PIECE.findall(path.read_text()):
        text = block or step + "\n"
        for old, new in SWAPS:
            text = text.replace(old, new)
        found.append(text)
    return found


def shell(script, timeout=1800):
    proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def on(node, command):
    return subprocess.run(sandbox.ssh_command(node) + [command], capture_output=True, text=True, timeout=120, check=False)


def launch_and_hang():
    rc, out = shell("ansible-playbook playbooks/setup.yml -i inventories/sandbox -e '{0}' --tags launcher\n"
                    "ansible-playbook playbooks/launch.yml -i inventories/sandbox -e '{0}'".format(SLOW_JOB))
    assert rc == 0, out[-3000:]
    deadline = time.monotonic() + 120
    this_run = ("journalctl -o cat _SYSTEMD_UNIT=torchrun-train.service "
                "_SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value torchrun-train.service)")
    # Two epochs of this run (it may resume from an earlier run's checkpoint).
    while len(re.findall(r"epoch [0-9]+/300", on("node1", this_run).stdout)) < 2:
        assert time.monotonic() < deadline, "the job did not start training"
        time.sleep(1)
    # One worker of node2 stops dead: every other rank now waits in a collective for it.
    worker = on("node2", "pgrep -P $(systemctl show -p MainPID --value torchrun-train.service) | head -n 1").stdout.strip()
    assert worker, "no worker on node2"
    on("node2", "kill -STOP %s" % worker)


def lightning_before_upgrade():
    rc, out = shell("ansible-playbook playbooks/setup.yml -i inventories/sandbox -e pytorch_lightning_version=2.6.5")
    assert rc == 0, out[-3000:]


def bare_nodes():
    """A new 2-node sandbox booted from the bare image: what the runbooks start from, and the
    air-gapped install's nodes with nothing of ours on them."""
    harness.fresh(2)


def site_service():
    """A service of the site on node1 (a node exporter on 9100), started before setup runs again."""
    on("node1", "systemd-run --unit=site-exporter --collect -p RuntimeMaxSec=900 /usr/bin/python3 -c "
                "'import socket; s=socket.create_server((\"\", 9100)); [s.accept()[0].close() for _ in iter(int, 1)]'")


SETUP = {"job-hangs.md": launch_and_hang, "upgrade-one-node-at-a-time.md": lightning_before_upgrade,
         "air-gapped-install.md": bare_nodes, "share-nodes-with-site-services.md": site_service}
CHECKS = {
    "first-bring-up.md": ["node1: PID 1 is systemd, node rank 0", "preflight: 2 node(s) in group trainers", "health check: PASS", "success"],
    "launch-watch-stop.md": ["train-node1.log", "train-rank0-node1.log", "train-rank3-node2.log", "inactive"],
    "job-hangs.md": ["node2 (node 1): 2 worker(s)", "health check: PASS"],
    "add-a-node.md": ["node3: PID 1 is systemd, node rank 2", "health check: PASS (gloo, 6 processes on 3 nodes", "node3 "],
    "replace-a-failed-node.md": ["UNREACHABLE", "a node does not answer", "node3: PID 1 is systemd, node rank 2",
                                 "health check: PASS (gloo, 6 processes on 3 nodes"],
    "two-jobs.md": ["torchrun-eval", "success"],
    "share-nodes-with-site-services.md": ["9100 reached from the outsider", "WARNING node1: firewall_mode=strict drops every port but SSH",
                                          "python3 (9100) off from other hosts"],
    "bring-your-own-project.md": ["success on every node", "1 rank 0 starts at epoch 0 1 rank 0 starts at epoch 2",
                                  "1 rank 3 starts at epoch 0 1 rank 3 starts at epoch 2"],
    # The runbooks before it (add-a-node, replace-a-failed-node) leave a group of three.
    "upgrade-one-node-at-a-time.md": ["node1 | CHANGED | rc=0 >> 2.13.0+cpu 2.6.6", "node2 | CHANGED | rc=0 >> 2.13.0+cpu 2.6.6",
                                      "node3 | CHANGED | rc=0 >> 2.13.0+cpu 2.6.6", "stack: the 3 node(s) run the same versions", "success"],
    "air-gapped-install.md": ["node1 | SUCCESS", "node2 | SUCCESS", "stack: the 2 node(s) run the same versions", "success"],
}


def stacks_of_every_rank():
    # py-spy saw every running rank inside the training script (the stopped one may not answer).
    dumps = sorted((ROOT / "torchrun-logs").glob("train-stack-rank*-node*.txt"))
    assert [p.name for p in dumps] == ["train-stack-rank%d-node%d.txt" % (r, r // 2 + 1) for r in range(4)]
    assert sum("lightning_synthetic.py" in p.read_text() for p in dumps) >= 3, [p.read_text()[:500] for p in dumps]
    # The hung job was the test's 300-epoch one: its checkpoint would not resume the runbooks'
    # 3-epoch job ("restored a checkpoint with current_epoch=16, but ... max_epochs=3").
    # Start over with the inventory's job, which leaves the checkpoint the next runbooks copy.
    for node in ("node1", "node2"):
        on(node, "rm -f /var/lib/torchrun/train/checkpoints/*")
    rc, out = shell("ansible-playbook playbooks/setup.yml -i inventories/sandbox --tags launcher\n"
                    "ansible-playbook playbooks/launch.yml -i inventories/sandbox")
    assert rc == 0, out[-3000:]


def eval_job_moved_port():
    rules = on("node1", "nft list table inet torchrun").stdout
    assert "29520" in rules and "29510" not in rules, rules


def every_rank_resumed_and_the_copy_is_gone():
    # Each rank of the group started twice: at epoch 0, then resumed at epoch 2 (not one rank left out).
    logs = "".join(p.read_text() for p in (ROOT / "torchrun-logs").glob("train-rank*-node*.log"))
    starts = sorted(re.findall(r"rank ([0-9]+) starts at epoch ([0-9]+)", logs))
    ranks = sorted({rank for rank, _ in starts}, key=int)
    assert len(ranks) >= 4 and sorted(starts) == sorted((r, e) for r in ranks for e in ("0", "2")), starts
    assert "last.ckpt" in on("node1", "ls %s/train/checkpoints" % sandbox.SHARED_MOUNT).stdout.split()
    for node in ("node1", "node2"):
        assert on(node, "test -e /opt/torchrun/jobs/train/project").returncode != 0


def every_node_upgraded():
    for node in ("node1", "node2"):
        assert on(node, "/opt/torchrun/venv/bin/pip show lightning").stdout.count("Version: 2.6.6") == 1


def wheels_came_from_the_wheelhouse():
    try:
        served = (ROOT / "airgap-http.log").read_text()
        for node in ("node1", "node2"):
            assert '%s - - ' % sandbox.address_of(node) in served and "GET /torch-2.13.0" in served, served[-2000:]
    finally:
        shell(airgap_cleanup())


def airgap_cleanup():
    return "pkill -f '%s' || true; rm -rf %s" % (AIRGAP_SERVER, AIRGAP_LEFTOVERS)


def site_service_reached_again():
    try:
        assert harness.connect("outsider", "198.18.0.11", 9100, seconds=3) == 0  # back to the default: the site's port
    finally:
        on("node1", "systemctl stop site-exporter")


AFTER = {"job-hangs.md": stacks_of_every_rank, "two-jobs.md": eval_job_moved_port,
         "share-nodes-with-site-services.md": site_service_reached_again,
         "bring-your-own-project.md": every_rank_resumed_and_the_copy_is_gone,
         "upgrade-one-node-at-a-time.md": every_node_upgraded, "air-gapped-install.md": wheels_came_from_the_wheelhouse}
RUNBOOKS = ["first-bring-up.md", "launch-watch-stop.md", "job-hangs.md", "add-a-node.md", "replace-a-failed-node.md",
            "two-jobs.md", "share-nodes-with-site-services.md", "bring-your-own-project.md", "upgrade-one-node-at-a-time.md",
            "air-gapped-install.md"]


def test_every_runbook_is_run_here():
    assert sorted(RUNBOOKS) == sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    for name in RUNBOOKS:
        assert blocks(DOCS / name), "%s has no bash block" % name
        assert "<!-- test-setup:" in (DOCS / name).read_text(), "%s does not say what its test sets up" % name


@pytest.fixture(scope="module")
def sandbox_cluster():
    bare_nodes()
    yield
    shell("ansible-playbook playbooks/stop.yml -i inventories/sandbox || true; "
          "rm -rf torchrun-logs torchrun-healthcheck.json torchrun-checkpoint; " + airgap_cleanup())
    harness.tool("down", check=False)


@pytest.mark.parametrize("name", RUNBOOKS)
def test_runbook_commands_work_on_the_sandbox(sandbox_cluster, name):
    if name in SETUP:
        SETUP[name]()
    rc, out = shell("\n".join(blocks(DOCS / name)))
    assert rc == 0, out[-4000:]
    flat = " ".join(out.split())  # undo the YAML callback's line wrapping
    for seen in CHECKS[name]:
        assert seen in flat, "%s: %r not in the output\n%s" % (name, seen, out[-4000:])
    if name in AFTER:
        AFTER[name]()
