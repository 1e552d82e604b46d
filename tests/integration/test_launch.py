"""The launcher on real nodes: hardening, secrets, status/logs/stop, and how failures end.

Sets up a fresh 2-node sandbox with a slow job (so it is still running while we poke it), then
drives the playbooks and kills processes the way real failures do. Measured times are printed
(`pytest -s`) and bounded generously; they are facts about this design, not speed targets.
Needs root (`make integration`).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sandbox

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
UNIT = "torchrun-train.service"
SECRET = "s3cr3t-token-for-tests"
SLOW_JOB = {"torchrun_script_args": ["--epochs", "300", "--sleep-per-epoch", "0.5"],
            "torchrun_secret_env": {"WANDB_API_KEY": SECRET}}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


def playbook(name, extra=None, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", PATH="%s:%s" % (BIN, os.environ["PATH"]))
    cmd = [BIN / "ansible-playbook", "playbooks/%s.yml" % name, "-i", "inventories/sandbox", "-e", json.dumps(dict(SLOW_JOB, **(extra or {})))]
    return subprocess.run(cmd + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def ok(proc):
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout


def on(node, command):
    return subprocess.run(sandbox.ssh_command(node) + [command], capture_output=True, text=True, timeout=120, check=False)


def prop(node, name):
    return on(node, "systemctl show -p %s --value %s" % (name, UNIT)).stdout.strip()


def workers(node):
    return on(node, "pgrep -u torchrun -c -f lightning_synthetic.py").stdout.strip() or "0"


def wait_for(predicate, timeout, step=0.25):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    return None


def current_log(node):
    """The job's output in its latest run only (a resumed run counts epochs on from the checkpoint)."""
    return on(node, "journalctl -o cat _SYSTEMD_UNIT=%s _SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value %s)"
              % (UNIT, UNIT)).stdout


def launch_and_join():
    ok(playbook("launch", {"launcher_wait": False}))
    # Training has begun on every rank once rank 0 logs an epoch of this run.
    assert wait_for(lambda: re.search(r"\] epoch [0-9]+/300", current_log("node1")), 120) is not None


@pytest.fixture(scope="module")
def cluster():
    subprocess.run([sys.executable, sandbox.__file__, "down"], capture_output=True, check=False)
    up = subprocess.run([sys.executable, sandbox.__file__, "up", "--nodes", "2"], capture_output=True, text=True, check=False)
    assert up.returncode == 0, up.stderr
    setup = playbook("setup", None, "--diff")
    yield ok(setup) + setup.stderr
    ok(playbook("stop"))
    subprocess.run([sys.executable, sandbox.__file__, "down"], capture_output=True, check=False)


def test_secret_never_shown_and_kept_root_only(cluster):
    assert SECRET not in cluster
    for node in ("node1", "node2"):
        assert on(node, "stat -c '%U %a' /etc/torchrun/train.secret.env").stdout.split() == ["root", "600"]
        assert SECRET not in on(node, "journalctl --no-pager -o cat").stdout


def test_unit_exposure_is_low(cluster):
    out = on("node1", "systemd-analyze security --no-pager %s" % UNIT).stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))
    print("systemd-analyze security exposure: %.1f" % exposure)
    assert exposure <= 4.0, out


def test_status_shows_each_node_running(cluster):
    launch_and_join()
    out = ok(playbook("status"))
    assert re.search(r"node1 +0 +active +0 ", out), out
    assert re.search(r"node2 +1 +active +0 ", out), out


def test_logs_fetched_one_file_per_node_marked_with_rank(cluster, tmp_path):
    ok(playbook("logs", {"launcher_logs_dir": str(tmp_path)}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-rank0-node1.log", "train-rank1-node2.log"]
    first = (tmp_path / "train-rank0-node1.log").read_text().splitlines()
    assert first and all(line.startswith("[node 0 node1] ") for line in first)
    assert any("joined: node 0" in line for line in first)


def test_stop_ends_every_unit_before_the_stop_timeout(cluster):
    start = time.monotonic()
    ok(playbook("stop"))
    took = time.monotonic() - start
    print("stop.yml on 2 running nodes: %.1f s" % took)
    assert took < 90  # TimeoutStopSec: nothing had to be SIGKILLed
    for node in ("node1", "node2"):
        assert prop(node, "ActiveState") in ("inactive", "failed")
        assert workers(node) == "0"


def test_master_port_taken_is_refused_before_any_node_starts(cluster):
    on("node1", "systemd-run --unit=squatter --collect -p RuntimeMaxSec=120 /usr/bin/python3 -c "
                "'import socket,time; s=socket.create_server((\"0.0.0.0\", 29500)); time.sleep(120)'")
    assert wait_for(lambda: ":29500 " in on("node1", "ss -Hltn").stdout, 10) is not None
    before = {node: prop(node, "InvocationID") for node in ("node1", "node2")}
    try:
        proc = playbook("launch")
        out = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0
        assert re.search(r"node1: torchrun_master_port=29500 is already in use by python3 pid [0-9]+; "
                         r"stop it or choose another port\. No node was started\.", out), out[-3000:]
        for node in ("node1", "node2"):
            assert prop(node, "InvocationID") == before[node]
            assert prop(node, "ActiveState") in ("inactive", "failed")
    finally:
        on("node1", "systemctl stop squatter")


def test_agent_sigkill_leaves_no_orphaned_workers(cluster):
    launch_and_join()
    pid = prop("node1", "MainPID")
    assert int(workers("node1")) >= 2
    on("node1", "kill -KILL %s" % pid)
    took = wait_for(lambda: workers("node1") == "0", 60)
    print("agent SIGKILLed: workers gone after %.1f s" % took)
    assert took is not None and took < 10
    ok(playbook("stop"))


def test_static_peer_killed_the_master_fails_fast(cluster):
    ok(playbook("setup", {"launcher_restart": "no"}))
    try:
        launch_and_join()
        on("node2", "systemctl kill --signal=KILL %s" % UNIT)
        took = wait_for(lambda: prop("node1", "ActiveState") in ("inactive", "failed"), 300, step=0.5)
        print("static mode, node2 killed: node1's unit ended after %s s" % (took and round(took, 1)))
        assert took is not None and took < 60
        assert prop("node1", "Result") != "success"
    finally:
        ok(playbook("stop"))
        ok(playbook("setup"))


def test_crash_restarts_every_node_and_resumes_from_the_checkpoint(cluster):
    job = {"torchrun_script_args": ["--epochs", "12", "--sleep-per-epoch", "0.5"], "launcher_wait": False}
    ok(playbook("setup", job))
    on("node1", "rm -f /var/lib/torchrun/train/checkpoints/*")
    on("node2", "rm -f /var/lib/torchrun/train/checkpoints/*")
    try:
        ok(playbook("launch", job))
        assert wait_for(lambda: re.search(r"\] epoch 3/12", current_log("node1")), 120) is not None
        start = time.monotonic()
        on("node2", "systemctl kill --signal=KILL %s" % UNIT)
        # Both units fail, systemd restarts each after RestartSec, the static rendezvous re-forms.
        done = wait_for(lambda: "final:" in current_log("node1"), 300, step=1)
        assert done is not None, current_log("node1")
        print("crash of node2 at epoch 3: job finished %.0f s later, after a restart" % (time.monotonic() - start))
        final = re.search(r"final: world_size=4 nodes=2 epochs=12 loss=[0-9.]+ resumed_after_epochs=([0-9]+)", current_log("node1"))
        assert final and int(final.group(1)) >= 1, current_log("node1")  # resumed, not from step 0
        for node in ("node1", "node2"):
            assert int(prop(node, "NRestarts")) >= 1
    finally:
        ok(playbook("stop"))
        ok(playbook("setup"))
