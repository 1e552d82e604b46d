"""The launcher on real nodes: hardening, secrets, status/logs/stop, and how failures end.

Sets up a fresh 2-node sandbox with a slow job (so it is still running while we poke it), then
drives the playbooks and kills processes the way real failures do. Measured times are printed
(`pytest -s`) and bounded generously; they are facts about this design, not speed targets.
Needs root (`make integration`).
"""

import contextlib
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import yaml
import harness
import sandbox
from conftest import run_playbook

UNIT = "torchrun-train.service"
SECRET = "s3cr3t-token-for-tests"
# On the sandbox's shared storage (/srv/shared, one host folder in every node), as a site's NFS:
# checkpoints are saved on global rank 0 and every rank resumes from them.
SHARED = "/srv/shared"
CHECKPOINTS = SHARED + "/train/checkpoints"
# The job's user has one uid on every node (torchrun_uid), as files on NFS need.
SLOW_JOB = {"torchrun_script_args": ["--epochs", "300", "--sleep-per-epoch", "0.5"],
            "torchrun_secret_env": {"WANDB_API_KEY": SECRET}, "torchrun_shared_dir": SHARED, "torchrun_uid": 2000}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


def playbook(name, extra=None, *args):
    return run_playbook(name, "-e", json.dumps(dict(SLOW_JOB, **(extra or {}))), *args)


def ok_not(proc):
    """The output of a playbook that must fail."""
    assert proc.returncode != 0, proc.stdout[-3000:]
    return proc.stdout + proc.stderr


def ok(proc):
    return harness.ok(proc, (UNIT, "torchrun-firewall.service"))


on = harness.on
recap_changed = harness.recap_changed


as_job = harness.as_job


def prop(node, name):
    return on(node, "systemctl show -p %s --value %s" % (name, UNIT)).stdout.strip()


def workers(node):
    return on(node, "pgrep -u torchrun-train -c -f lightning_synthetic.py").stdout.strip() or "0"


wait_for = harness.wait_for
current_log = harness.current_log


def install(extra=None):
    """setup.yml for settings that change only the job's unit and environment (the launcher role):
    the other roles have nothing to change, so the run skips them (8 s instead of 27 s)."""
    return ok(playbook("setup", extra, "--tags", "launcher"))


def launch_and_join(extra=None):
    ok(playbook("launch", dict({"job_wait": False}, **(extra or {}))))
    # Training has begun on every rank once rank 0 logs an epoch of this run (on node1; with c10d,
    # global rank 0 may be on either node).
    nodes = ("node1", "node2") if (extra or {}).get("torchrun_rdzv_backend") == "c10d" else ("node1",)
    assert wait_for(lambda: any(re.search(r"\] epoch [0-9]+/300", current_log(n)) for n in nodes), 120) is not None


def training():
    """The job trains: left running by the test before (each node active with its workers), or launched
    until it does (a test run alone)."""
    if any(prop(node, "ActiveState") != "active" or workers(node) == "0" for node in ("node1", "node2")):
        launch_and_join()


@pytest.fixture(scope="module")
def cluster():
    with harness.cluster(2):
        setup = playbook("setup", None, "--diff")
        ok(setup)
        harness.keep_as_seed("node1")  # the health check's cluster boots on it (test_healthcheck.py)
        yield setup.stdout + setup.stderr
        if on("node1", "test -e /etc/systemd/system/%s" % UNIT).returncode == 0:  # the last test removes the job
            ok(playbook("stop"))


def test_secret_never_shown_and_kept_root_only(cluster):
    assert SECRET not in cluster
    for node in ("node1", "node2"):
        assert on(node, "stat -c '%U %a' /etc/torchrun/train.secret.env").stdout.split() == ["root", "600"]
        assert SECRET not in on(node, "journalctl --no-pager -o cat").stdout


def test_a_lightning_trainer_takes_the_cluster_shape_from_the_unit(cluster):
    # A script that leaves devices/num_nodes out of Trainer() gets them from PL_TRAINER_* in the unit's env.
    shape = on("node2", "env $(grep '^PL_TRAINER_' /etc/torchrun/train.env) %s/bin/python -c "
                        "'from lightning import Trainer; t = Trainer(accelerator=\"cpu\", logger=False); print(t.num_nodes, t.num_devices)'"
               % "/opt/torchrun/venv")
    assert shape.stdout.split()[-2:] == ["2", "2"], shape.stdout + shape.stderr


def test_unit_exposure_is_low(cluster):
    out = on("node1", "systemd-analyze security --no-pager %s" % UNIT).stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))
    print("systemd-analyze security exposure: %.1f" % exposure)
    assert exposure <= 4.0, out


def test_a_healthy_cluster_passes_the_health_check_and_it_leaves_nothing(cluster, tmp_path):
    """The health check on the set-up nodes before any job runs (test_healthcheck.py, make test-slow, has
    three nodes, a throttled one named and a failing check that launches nothing)."""
    report = tmp_path / "report.json"
    out = " ".join(ok(playbook("healthcheck", dict(harness.HEALTHCHECK_SMALL, healthcheck_report=str(report),
                                                   healthcheck_pair_ratio=0.2))).split())
    harness.healthy(out, report, ["node1", "node2"])
    assert prop("node1", "ActiveState") == "inactive"  # the check started no job


def test_status_shows_each_node_running(cluster):
    launch_and_join()
    out = ok(playbook("status"))
    assert re.search(r"node1 +0 +active +0 ", out), out
    assert re.search(r"node2 +1 +active +0 ", out), out


def test_a_wait_that_ends_before_the_job_leaves_the_play_successful_and_the_job_training(cluster):
    # 150 s of training, a 12 s wait: the play ends well and says how to follow and stop the job; while
    # it waits the cluster gets one line of progress at a time, never a retry line per node.
    ok(playbook("stop"))
    waits = set(glob.glob(os.path.join(tempfile.gettempdir(), "onprem-torchrun-wait-*")))
    out = ok(playbook("launch", {"job_wait_timeout": 12}))
    assert "FAILED - RETRYING" not in out, out[-3000:]
    # What the nodes' waits shared on the controller (their log lines) is gone with the wait.
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "onprem-torchrun-wait-*"))) == waits
    flat = " ".join(out.split())
    assert "job train is still running on every node since" in flat and "stop it with: ansible-playbook onprem.torchrun.stop" in flat
    progress = [line for line in out.splitlines() if line.startswith("job train: 2 of 2 node(s) running, 0 restart(s); node1: ")]
    assert 1 <= len(progress) <= 3, out[-3000:]
    for node in ("node1", "node2"):
        assert prop(node, "ActiveState") == "active", node


def test_installed_from_the_tarball_and_run_by_name_outside_the_checkout_it_trains_with_numbers_typed_as_text(cluster, tmp_path):
    # As a user runs it: the built collection in an empty collections path, from a folder of their
    # own, with no ansible.cfg of ours (ansible.posix and community.general come with ansible).
    # `-e key=value` always gives strings ("120", "false"): launch used to start the units and then
    # crash on "unsupported operand type(s) for /", with nobody following the job.
    bin_dir = harness.BIN
    subprocess.run([str(bin_dir / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(harness.ROOT)],
                   check=True, capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "cols"), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"), ANSIBLE_NOCOLOR="1")
    tarball = next(tmp_path.glob("onprem-torchrun-*.tar.gz"))
    subprocess.run([str(bin_dir / "ansible-galaxy"), "collection", "install", "--offline", "--force", "--no-deps", "-p", str(tmp_path / "cols"),
                    str(tarball)], check=True, capture_output=True, env=env, cwd=tmp_path, timeout=120)
    ok(playbook("stop"))
    before = prop("node1", "InvocationID")
    proc = subprocess.run([str(bin_dir / "ansible-playbook"), "onprem.torchrun.launch", "-i", str(harness.ROOT / "inventories" / "sandbox"),
                           "-e", json.dumps(SLOW_JOB), "-e", "job_join_timeout=120", "-e", "job_wait=false", "-e", "job_log_lines=2",
                           "-e", "launcher_restart_sec=15"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert "unsupported operand" not in ok(proc)
    assert prop("node1", "InvocationID") != before  # a new run, started by the installed collection
    assert wait_for(lambda: re.search(r"\] epoch [0-9]+/300", current_log("node1")), 120) is not None
    for node in ("node1", "node2"):
        assert prop(node, "ActiveState") == "active"
        assert workers(node) != "0"


def test_logs_fetched_one_file_per_node_and_one_per_global_rank(cluster, tmp_path):
    ok(playbook("logs", {"job_logs_dir": str(tmp_path)}))
    # 2 nodes x 2 processes: node1 runs global ranks 0 and 1, node2 ranks 2 and 3.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-node1.log", "train-node2.log", "train-rank0-node1.log",
                                                          "train-rank1-node1.log", "train-rank2-node2.log", "train-rank3-node2.log"]
    whole = (tmp_path / "train-node1.log").read_text().splitlines()
    assert whole and all(line.startswith("[node 0 node1] ") for line in whole)
    assert any("[rank 1] joined: node 0" in line for line in whole)
    for rank, node in ((0, "node1"), (1, "node1"), (2, "node2"), (3, "node2")):
        lines = (tmp_path / ("train-rank%d-%s.log" % (rank, node))).read_text().splitlines()
        # Every line the script wrote is in its own rank's file only (the script names its RANK).
        tagged = [line for line in lines if "[rank " in line]
        assert any(("[rank %d] joined: node %d" % (rank, rank // 2)) in line for line in tagged), lines[:20]
        assert all(("torchrun[" in line and "[rank %d] " % rank in line) for line in tagged), tagged[:20]
        marked = [line for line in lines if "[rank%d]: " % rank in line]
        assert not marked, marked[:10]  # the marker is taken out


def test_stop_saves_a_checkpoint_and_ends_every_unit_quickly(cluster):
    start = time.time()
    ok(playbook("stop"))
    took = time.time() - start
    print("stop.yml on 2 running nodes: %.1f s" % took)
    assert took < 30  # torchrun did not have to SIGKILL the workers after its 30 s grace
    assert "SIGTERM: saved %s/last.ckpt" % CHECKPOINTS in current_log("node1")
    for node in ("node1", "node2"):
        assert prop(node, "ActiveState") in ("inactive", "failed")
        assert workers(node) == "0"
        # Global rank 0 wrote it on the way out, on the shared storage: every node sees that one file.
        saved = float(as_job(node, "stat -c %%Y %s/last.ckpt" % CHECKPOINTS).stdout)
        assert saved >= int(start) - 1


def test_follow_shows_every_ranks_lines_while_the_job_runs_and_returns_when_it_ends(cluster, tmp_path):
    launch_and_join()
    follower = harness.playbook_started("logs", "-e", json.dumps(dict(SLOW_JOB, job_follow=True, job_logs_dir=str(tmp_path))))
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(follower.stdout), daemon=True)
    reader.start()
    try:
        # Rank 0 (node1) logs each epoch; the follower shows new ones while the job trains.
        fresh = re.compile(r"^node1 \(node 0\) rank 0 \| .*epoch ([0-9]+)/300")
        assert wait_for(lambda: len({m.group(1) for m in map(fresh.match, list(seen)) if m}) >= 3, 90) is not None, seen[-20:]
        assert prop("node1", "ActiveState") == "active" and follower.poll() is None
        for node in ("node1", "node2"):  # the job ends (here by a stop on the nodes): following ends with it
            on(node, "systemctl stop --no-block %s" % UNIT)
        follower.wait(timeout=90)
        reader.join(timeout=10)
    finally:
        follower.kill()
    out = "".join(seen)
    assert follower.returncode == 0, out[-3000:]
    # Every rank says it stops, the last one (3, on node2) too, and rank 0 saves: all while the job ends.
    for node, rank in (("node1 (node 0)", 0), ("node2 (node 1)", 3)):
        assert re.search(r"^%s rank %d \| .*SIGTERM: stopping at epoch" % (re.escape(node), rank), out, re.M), out[-3000:]
    assert re.search(r"^node1 \(node 0\) rank 0 \| .*SIGTERM: saved %s/last.ckpt" % CHECKPOINTS, out, re.M), out[-3000:]
    assert "FAILED - RETRYING" not in out
    assert sorted(p.name for p in tmp_path.glob("train-rank*")) == ["train-rank0-node1.log", "train-rank1-node1.log",
                                                                  "train-rank2-node2.log", "train-rank3-node2.log"]


def test_launch_with_settings_setup_did_not_install_is_refused(cluster):
    before = {node: prop(node, "InvocationID") for node in ("node1", "node2")}
    proc = playbook("launch", {"torchrun_script_args": ["--epochs", "7"]})
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "node1: /etc/systemd/system/torchrun-train.service differ from this run's settings" in out, out[-3000:]
    assert {node: prop(node, "InvocationID") for node in ("node1", "node2")} == before


@pytest.mark.slow  # 37 s: make test-slow
def test_a_launch_starts_even_after_the_unit_hit_its_start_limit(cluster):
    # Started and stopped by hand until systemd refuses ("Start request repeated too quickly"):
    # where an operator ends who launches and stops a few times within the start-limit interval
    # (a stopped torchrun exits 1, a failure). Both nodes at once.
    loop = "for i in 1 2 3 4; do systemctl start %s || break; sleep 3; systemctl stop %s; done" % (UNIT, UNIT)
    hands = [subprocess.Popen(sandbox.ssh_command(node) + [loop], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for node in ("node1", "node2")]
    for hand in hands:
        hand.wait(timeout=120)
    for node in ("node1", "node2"):
        refused = on(node, "journalctl -u %s -n 3 -o cat --no-pager" % UNIT).stdout
        assert "Start request repeated too quickly" in refused, refused
    ok(playbook("launch", {"job_wait": False}))
    for node in ("node1", "node2"):
        assert prop(node, "ActiveState") == "active"
    ok(playbook("stop"))


def test_master_port_taken_is_refused_before_any_node_starts(cluster):
    on("node1", "systemd-run --unit=squatter --collect -p RuntimeMaxSec=120 /usr/bin/python3 -c "
                "'import socket,time; s=socket.create_server((\"0.0.0.0\", 29500)); time.sleep(120)'")
    assert wait_for(lambda: ":29500 " in on("node1", "ss -Hltn").stdout, 10) is not None
    before = {node: prop(node, "InvocationID") for node in ("node1", "node2")}
    try:
        proc = playbook("launch")
        out = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0
        # The preflight checks, run again by launch on what the nodes hold now, name the holder.
        assert re.search(r"node1: torchrun_master_port=29500 is in use on the master node by python3 \(pid [0-9]+, squatter\.service\); "
                         r"stop it or choose another port", out), out[-3000:]
        for node in ("node1", "node2"):
            assert prop(node, "InvocationID") == before[node]
            assert prop(node, "ActiveState") in ("inactive", "failed")
    finally:
        on("node1", "systemctl stop squatter")


@pytest.mark.slow  # 21 s: make test-slow
def test_agent_sigkill_leaves_no_orphaned_workers(cluster):
    launch_and_join()
    pid = prop("node1", "MainPID")
    assert int(workers("node1")) >= 2
    on("node1", "kill -KILL %s" % pid)
    took = wait_for(lambda: workers("node1") == "0", 60)
    print("agent SIGKILLed: workers gone after %.1f s" % took)
    assert took is not None and took < 10
    ok(playbook("stop"))


@pytest.mark.slow  # 37 s: make test-slow
def test_static_peer_killed_the_master_fails_fast(cluster):
    # node2's kernel closes the killed workers' sockets, so node1's gloo collectives fail at once
    # (about 2 s). Once in a fresh-clone run node1 was still running 300 s later: the kill can land
    # where no socket of node1 notices. The collective timeout is what bounds that case, so it is
    # short here; a time near it (not near 2 s) in the printed line says which path ended the job.
    job = {"launcher_restart": "no", "torchrun_collective_timeout": 30}
    install(job)
    try:
        launch_and_join(job)
        on("node2", "systemctl kill --signal=KILL %s" % UNIT)
        took = wait_for(lambda: prop("node1", "ActiveState") in ("inactive", "failed"), 180, step=0.5)
        print("static mode, node2 killed: node1's unit ended after %s s" % (took and round(took, 1)))
        assert took is not None and took < 90, on("node1", "journalctl -o cat -n 60 -u %s" % UNIT).stdout
        assert prop("node1", "Result") != "success"
    finally:
        ok(playbook("stop"))
        install()


@pytest.mark.slow  # 80 s: make test-slow
def test_crash_restarts_every_node_and_resumes_from_the_checkpoint(cluster):
    job = {"torchrun_script_args": ["--epochs", "12", "--sleep-per-epoch", "0.5"], "job_wait": False}
    install(job)
    as_job("node1", "rm -f %s/*" % CHECKPOINTS)
    try:
        ok(playbook("launch", job))
        assert wait_for(lambda: re.search(r"\] epoch 3/12", current_log("node1")), 120) is not None
        start = time.monotonic()
        since = {node: on(node, "date +%s").stdout.strip() for node in ("node1", "node2")}
        on("node2", "systemctl kill --signal=KILL %s" % UNIT)
        # Both units fail, systemd restarts each after RestartSec, the static rendezvous re-forms.
        done = wait_for(lambda: "final:" in current_log("node1"), 300, step=1)
        assert done is not None, current_log("node1")
        print("crash of node2 at epoch 3: job finished %.0f s later, after a restart" % (time.monotonic() - start))
        final = re.search(r"final: world_size=4 nodes=2 epochs=12 loss=[0-9.]+ resumed_after_epochs=([0-9]+)", current_log("node1"))
        assert final and int(final.group(1)) >= 1, current_log("node1")  # resumed, not from step 0
        # systemd restarted each unit. Read it from the journal: a unit that has ended may be unloaded
        # at once, and then reads NRestarts=0 and no InvocationID (seen in CI on node2).
        for node in ("node1", "node2"):
            journal = on(node, "journalctl -o cat -u %s --since @%s" % (UNIT, since[node])).stdout
            assert "Scheduled restart job, restart counter is at 1" in journal, (node, journal[-2000:])
    finally:
        ok(playbook("stop"))
        install()


@pytest.mark.slow  # 70 s: make test-slow
def test_c10d_worker_killed_the_job_reforms_and_resumes(cluster):
    job = {"torchrun_rdzv_backend": "c10d", "launcher_max_restarts": 3, "job_wait": False,
           "torchrun_script_args": ["--epochs", "12", "--sleep-per-epoch", "0.5"]}
    install(job)
    unit = on("node1", "cat /etc/systemd/system/%s" % UNIT).stdout
    assert '"--rdzv-backend=c10d"' in unit and '"--rdzv-endpoint=198.18.0.11:29500"' in unit
    assert "is_host=1" in unit and "is_host=1" not in on("node2", "cat /etc/systemd/system/%s" % UNIT).stdout
    assert "--node-rank" not in unit and "--rdzv-id=${TORCHRUN_RDZV_ID}" in unit
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in on("node2", "cat /etc/torchrun/train.env").stdout
    for node in ("node1", "node2"):
        as_job(node, "rm -f %s/*" % CHECKPOINTS)
    try:
        ok(playbook("launch", job))
        ids = {on(n, "cat /etc/torchrun/train.run.env").stdout for n in ("node1", "node2")}
        assert len(ids) == 1 and ids.pop().startswith("TORCHRUN_RDZV_ID=train-")
        logs = lambda: current_log("node1") + current_log("node2")  # noqa: E731 (rank 0 may be on either node)
        assert wait_for(lambda: re.search(r"\] epoch 3/12", logs()), 180) is not None, logs()
        worker = on("node2", "pgrep -P $(systemctl show -p MainPID --value %s) | head -n 1" % UNIT).stdout.strip()
        on("node2", "kill -KILL %s" % worker)
        seen = {}

        def finished():
            # Keep the text: once the unit is inactive systemd may forget the run's invocation id.
            seen["log"] = logs()
            return "final:" in seen["log"]

        done = wait_for(finished, 300, step=1)
        text = seen["log"]
        assert done is not None, logs()
        final = re.search(r"final: world_size=4 nodes=2 epochs=12 loss=[0-9.]+ resumed_after_epochs=([0-9]+)", text)
        assert final and int(final.group(1)) >= 1, text
        assert "restart 1" in text  # the agents restarted the worker group ...
        for node in ("node1", "node2"):
            assert prop(node, "NRestarts") == "0"  # ... without systemd restarting any unit
    finally:
        ok(playbook("stop", job))
        install()


def log_since(node, since):
    """The job's journal on a node since a time (a unit that has ended may be unloaded: no InvocationID)."""
    return on(node, "journalctl -o cat -u %s --since @%s" % (UNIT, since)).stdout


PROJECT = str(harness.ROOT / "examples" / "project")


def project_job(epochs, **extra):
    """The user project examples/project, trained for ``epochs`` in all (python -m trainer.main EPOCHS)."""
    return dict({"torchrun_project_dir": PROJECT, "torchrun_module": "trainer.main", "torchrun_script_args": [str(epochs)],
                 "job_wait": True}, **extra)


def train_project(job, epochs, start, nodes, setup=("--tags", "pytorch,launcher")):
    """Set up and launch the project (setup=None: train.yml does both); every rank of ``nodes`` starts at
    epoch ``start`` and ends at ``epochs``."""
    if setup is not None:
        ok(playbook("setup", job, *setup))
    since = on("node1", "date +%s").stdout.strip()
    out = ok(playbook("launch" if setup is not None else "train", job))
    assert "success on every node" in out, out[-3000:]
    logs = "".join(log_since(node, since) for node in nodes)
    ranks = range(2 * len(nodes))
    assert sorted(re.findall(r"rank ([0-9]+) starts at epoch ([0-9]+)", logs)) == [(str(r), str(start)) for r in ranks], logs
    assert sorted(re.findall(r"rank ([0-9]+) ended at epoch ([0-9]+)", logs)) == [(str(r), str(epochs)) for r in ranks], logs
    return logs, out


@pytest.mark.slow  # 43 s: make test-slow (the same rules as the static case, which make test runs; the rendered rules are unit-tested)
def test_with_c10d_a_shell_user_on_a_peer_node_cannot_reach_the_workers_store(cluster, mallory):
    """c10d (before a second job shares the nodes, which preflight would refuse with c10d): rank 0's agent keeps the workers' store on a random port of the collective range."""
    install({"torchrun_rdzv_backend": "c10d"})
    try:
        launch_and_join({"torchrun_rdzv_backend": "c10d"})
        agent = prop("node1", "MainPID")
        ports = [int(m.group(1)) for m in re.finditer(r":(\d+) .*pid=%s," % agent, on("node1", "ss -Hltnp").stdout)]
        store = [p for p in ports if 52000 <= p <= 53999]
        assert store, on("node1", "ss -Hltnp").stdout
        for port in store + [29500]:
            assert opens("node2", mallory, "198.18.0.11", port) == "refused", port
            assert opens("node2", "torchrun-train", "198.18.0.11", port) == "open", port
    finally:
        ok(playbook("stop", {"torchrun_rdzv_backend": "c10d"}))
        install()


def setup_play(out):
    """train.yml's setup play, from its output."""
    play = out[out.index("PLAY [Set up the training cluster]"):]
    return play[:play.index("PLAY [", 1)]


def why(out):
    """What train.yml said of each node's setup roles (skipped as unchanged, run again and why), then the play's end."""
    play = " ".join(setup_play(out).split())
    return "\n".join(re.findall(r"node[0-9]+: skipped as unchanged: .*?(?=' ok: |' TASK|$)", play)) + "\n...\n" + setup_play(out)[-3000:]


def setup_roles_run(out):
    """The setup roles whose tasks ran in train.yml's setup play (the checks and the contract role aside)."""
    return set(re.findall(r"TASK \[onprem\.torchrun\.(nvidia|pytorch|firewall|connectivity|launcher) : ", setup_play(out)))


def test_a_users_lightning_project_resumes_on_every_rank_writes_where_it_may_and_an_edited_copy_is_named(cluster, tmp_path):
    # A user's package (modules, a config, a data folder left out), run with python -m, with standard
    # Lightning checkpointing: ModelCheckpoint saves on global rank 0 only, ckpt_path="last". On shared
    # storage every rank resumes from that file when the job is relaunched for more epochs (on
    # node-local disks node2 would start over and the ranks would hang). It writes ~/.cache and a
    # folder it was given (torchrun_write_paths), and nothing else. Its requirements file (a package the
    # cluster's stack lacks) is installed on every node. train.yml after an edit runs no setup role whose
    # inputs are unchanged and copies the edited file. Then a file edited on node2 alone is named, a
    # requirement missing everywhere is named on each node, and nothing starts.
    project = str(tmp_path / "project")
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    copy = "/opt/torchrun/jobs/train/project"
    for node in ("node1", "node2"):
        on(node, "install -d -o torchrun-train -g torchrun-train -m 0750 /srv/outputs")
    as_job("node1", "rm -f %s/*" % CHECKPOINTS)
    try:
        # The requirements once; then train.yml, whose setup runs again the launcher alone (the epochs changed).
        for epochs, start, setup in ((2, 0, ("--tags", "pytorch,launcher")), (4, 2, None)):
            job = project_job(epochs, torchrun_project_dir=project, torchrun_write_paths=["/srv/outputs"], torchrun_env={"OUTPUTS": "/srv/outputs"})
            logs, out = train_project(job, epochs, start, ["node1", "node2"], setup=setup)
        assert setup_roles_run(out) == {"launcher"}, why(out)
        said = re.search(r"node1: skipped as unchanged: ([a-z, ]+); runs again: launcher \(([^)]*)\)", " ".join(out.split()))
        assert said and set(said.group(1).split(", ")) == {"pytorch", "firewall", "connectivity"}, why(out)
        assert "torchrun_script_args" in said.group(2).split(", "), why(out)
        # The copy is the project, root's, without its data folder.
        assert on("node2", "cd %s && find . -type f | sort" % copy).stdout.split() == [
            "./README.md", "./configs/train.cfg", "./requirements.txt", "./trainer/__init__.py", "./trainer/main.py", "./trainer/model.py"]
        assert on("node2", "stat -c '%%U %%a' %s/trainer/main.py" % copy).stdout.split() == ["root", "644"]
        wrote = [line for line in logs.splitlines() if " home=" in line]
        assert len(wrote) == 4, logs
        for line in wrote:
            assert "width=12 home=/var/lib/torchrun/train " in line, line
            assert "home-cache=ok xdg-cache=ok outputs=ok system=refused (Read-only file system) tabulate=0.9.0" in line, line
        assert on("node2", "ls /srv/outputs").stdout.split() == ["rank2.txt", "rank3.txt"]
        # train.yml again, nothing changed: no setup role runs (each role's inputs are as on its last run).
        out = ok(playbook("train", job))
        assert setup_roles_run(out) == set() and "success on every node" in out, why(out)
        # A line of the project edited and a connectivity setting changed: the connectivity check runs
        # again, the launcher's project copy alone (its changed file), and the job trains the new code.
        with open(project + "/trainer/model.py", "a") as model:
            model.write("# edited on the controller\n")
        out = ok(playbook("train", dict(job, connectivity_timeout=4)))
        assert setup_roles_run(out) == {"connectivity", "launcher"}, why(out)
        launcher = set(re.findall(r"TASK \[onprem\.torchrun\.launcher : ([^\]]+)\]", setup_play(out)))
        script = yaml.safe_load((harness.ROOT / "roles" / "launcher" / "tasks" / "script.yml").read_text())
        names = {task["name"] for task in script} | {inner["name"] for task in script for inner in task.get("block", [])}
        assert "Copy the project to the node (deletions carried over)" in launcher and launcher <= names, launcher
        assert "success on every node" in out, out[-3000:]
        assert on("node2", "tail -1 %s/trainer/model.py" % copy).stdout.strip() == "# edited on the controller"
        # An edit made on one node is named before any unit starts.
        on("node2", "echo '# edited here' >> %s/trainer/model.py" % copy)
        since = on("node1", "date +%s").stdout.strip()
        proc = playbook("launch", job)
        text = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0
        assert "node2: its copy of the project (%s) differs from torchrun_project_dir=%s" % (copy, project) in text, text[-3000:]
        assert "node1: its copy" not in text
        on("node2", "sed -i '$d' %s/trainer/model.py" % copy)
        # The project's requirement gone from every node (the file changed, setup not run): the check of what is
        # installed, before the stack report, names each node (each node's own venv answers for it).
        for node in ("node1", "node2"):
            on(node, "/opt/torchrun/venv/bin/pip uninstall --quiet --yes tabulate")
        text = " ".join(ok_not(playbook("launch", job)).split())
        for node in ("node1", "node2"):
            assert "%s: /opt/torchrun/venv does not hold what %s/requirements.txt asks for: tabulate==0.9.0 (not installed); run " \
                   "setup.yml" % (node, project) in text, text[-3000:]
        for node in ("node1", "node2"):
            assert "Started torchrun-train" not in on(node, "journalctl -u %s --since @%s" % (UNIT, since)).stdout
    finally:
        as_job("node1", "rm -f %s/*" % CHECKPOINTS)
        for node in ("node1", "node2"):
            on(node, "rm -rf /srv/outputs")
        install()
    assert on("node1", "test -e %s" % copy).returncode != 0  # the job without a project leaves no copy behind


def test_a_sites_own_environment_is_checked_and_never_changed(cluster):
    # pytorch_venv_external: the venv setup built stands in for a site image's environment.
    before = on("node1", "find /opt/torchrun/venv -newer /opt/torchrun/venv/bin/python | wc -l").stdout
    out = " ".join(ok(playbook("setup", {"pytorch_venv_external": True}, "--tags", "pytorch")).split())
    assert re.search(r"into the venv\] \*+ (skipping: \[node[12]\] ){2}", out), out[-3000:]  # no pip run
    # Nothing changed on the nodes but the pytorch role's kept digest (its inputs changed: the collection's bookkeeping).
    changed = [chunk.split("]", 1)[0] for chunk in out.split("TASK [")[1:] if "changed: [node" in chunk.split("PLAY RECAP")[0]]
    assert changed == ["Keep the digests of what the roles ran with, for the next run"], (changed, out[-3000:])
    assert on("node1", "find /opt/torchrun/venv -newer /opt/torchrun/venv/bin/python | wc -l").stdout == before
    proc = playbook("setup", {"pytorch_venv_external": True, "torchrun_venv": "/opt/site-env"}, "--tags", "pytorch")
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    for node in ("node1", "node2"):
        assert "%s: pytorch_venv_external=true but torchrun_venv=/opt/site-env has no bin/python or bin/torchrun" % node in text, text[-3000:]


@pytest.fixture()
def stalled_proxy():
    """A proxy on the host that accepts node2's connections and never answers (a stalled mirror, or
    apt-cacher-ng holding a dead upstream): node2's APT goes through it, its package lists are stale."""
    tarpit = socket.create_server((sandbox.HOST_ADDR, 0))
    held = []

    def hold():
        with contextlib.suppress(OSError):
            while True:
                held.append(tarpit.accept()[0])

    threading.Thread(target=hold, daemon=True).start()
    url = "http://%s:%d/" % (sandbox.HOST_ADDR, tarpit.getsockname()[1])
    on("node2", "printf 'Acquire::http::Proxy \"%s\";\\n' >/etc/apt/apt.conf.d/99stalled-proxy && "
                "touch -d '3 days ago' /var/lib/apt/lists /var/lib/apt/periodic/update-success-stamp 2>/dev/null; true" % url)
    yield url
    on("node2", "rm -f /etc/apt/apt.conf.d/99stalled-proxy")
    tarpit.close()
    for conn in held:
        conn.close()


@pytest.mark.slow  # 57 s: make test-slow (the bounds and their message are the packages task's, unit-rendered; this is apt waiting on a real socket)
def test_a_stalled_mirror_fails_the_package_step_naming_the_node_and_the_proxy(cluster, stalled_proxy):
    # The bound is apt's own (no byte for torchrun_package_stall_timeout seconds, one retry): the play
    # ends on its own; the harness's timeout is only there to fail a hang instead of waiting forever.
    proc = run_playbook("setup", "-e", json.dumps(dict(SLOW_JOB, torchrun_package_stall_timeout=3)), "--tags", "pytorch", timeout=300)
    out = " ".join(ok_not(proc).split())
    assert "node2: installing python3-venv, python3-packaging failed" in out, out[-3000:]
    assert "through the proxy %s (HTTP)" % stalled_proxy in out and "no data for 3 s fails and is retried once" in out, out[-3000:]
    assert re.search(r"node2: installing [^;]* fetching from http://[^ ]+", out), out[-3000:]  # the node's mirror, named
    assert "node1: installing" not in out  # node1's mirror answers; the play stops for node2 (any_errors_fatal)


# A second job on the same nodes, with its own user, master port and rules.
EVAL = {"torchrun_job": "eval", "torchrun_master_port": 29600, "torchrun_uid": 2001, "torchrun_secret_env": {}}


def test_a_second_job_gets_its_own_unit_and_ports(cluster):
    second = dict(EVAL, torchrun_script_args=["--epochs", "2"])
    # The stack is the cluster's already: the second job needs its user, rules and unit only.
    ok(playbook("setup", second, "--tags", "firewall,launcher"))
    for node in ("node1", "node2"):
        ruleset = on(node, "nft list table inet torchrun").stdout
        assert "tcp dport 29500 ip saddr != @nodes_train drop" in ruleset, ruleset
        assert "tcp dport 29600 ip saddr != @nodes_eval drop" in ruleset, ruleset
        assert "tcp dport 52000-53999 ip saddr != @all_peers drop" in ruleset, ruleset
        assert on(node, "systemctl cat torchrun-eval.service torchrun-train.service").returncode == 0
    out = ok(playbook("launch", second))
    assert re.search(r"final: world_size=4 nodes=2 epochs=2 ", out), out[-3000:]


def test_jobs_on_a_node_keep_apart_each_as_its_own_user(cluster):
    """Job eval (set up above) cannot read train's environment, secrets or checkpoints, nor open its store."""
    training()
    pid = on("node1", "pgrep -n -u torchrun-train -f lightning_synthetic.py").stdout.strip()
    assert pid, "train is not running"

    def as_user(user, command):
        return on("node1", "runuser -u %s -- %s" % (user, command))

    # Both users exist, and the job's own user can (so each refusal below is the user's, not a
    # missing account, file or process).
    for node in ("node1", "node2"):  # each with the uid and gid its torchrun_uid names
        assert on(node, "id -u torchrun-train; id -g torchrun-train; id -u torchrun-eval; id -g torchrun-eval").stdout.split() == [
            "2000", "2000", "2001", "2001"]
    assert "TORCHRUN_JOB=train" in as_user("torchrun-train", "cat /proc/%s/environ" % pid).stdout.replace("\0", "\n")
    assert as_user("torchrun-train", "ls %s" % CHECKPOINTS).returncode == 0
    for command in ("cat /proc/%s/environ" % pid, "cat /etc/torchrun/train.env", "cat /etc/torchrun/train.secret.env",
                    "ls /var/lib/torchrun/train", "ls %s" % CHECKPOINTS, "touch %s/last.ckpt" % CHECKPOINTS):
        denied = as_user("torchrun-eval", command)
        assert denied.returncode != 0 and "TORCHRUN_JOB" not in denied.stdout, (command, denied.stdout)
    # The store, over loopback and over the node's own address: train's user only, not eval's, not root.
    connect = "python3 -c 'import socket; socket.create_connection((\"%s\", 29500), timeout=2)'"
    for address in ("127.0.0.1", "::1", "198.18.0.11"):
        assert as_user("torchrun-train", connect % address).returncode == 0, address
        for user in ("torchrun-eval", "root"):
            refused = as_user(user, connect % address)
            assert "ConnectionRefusedError" in refused.stderr, (user, address, refused.stderr)
    # train trains on: the removal below takes eval away while it runs.


def test_removing_a_job_leaves_no_trace_of_it_and_the_other_job_trains_on(cluster):
    """remove.yml takes job eval (set up above) off every node while train runs; a second run changes nothing."""
    # What eval's user left: a checkpoint and scratch on the shared storage, a link to a file of
    # train's in its folder (root must remove the link, never what it points to).
    on("node1", "runuser -u torchrun-eval -- sh -c 'mkdir -p %s/eval/checkpoints %s/eval/scratch && echo w > %s/eval/checkpoints/kept.ckpt'"
       % (SHARED, SHARED, SHARED))
    on("node2", "runuser -u torchrun-eval -- ln -s /etc/torchrun/train.env /var/lib/torchrun/eval/train.env")
    training()
    dry = ok(playbook("remove", EVAL, "--check", "--diff"))
    assert "Would remove job eval from node1, node2" in dry, dry[-3000:]
    assert on("node1", "systemctl cat torchrun-eval.service; id torchrun-eval").returncode == 0  # --check changed nothing

    out = ok(playbook("remove", EVAL))
    assert "Its checkpoints stay in %s/eval/checkpoints" % SHARED in out, out[-3000:]
    for node in ("node1", "node2"):
        ruleset = on(node, "nft list table inet torchrun").stdout
        assert "nodes_train" in ruleset and "29500" in ruleset, ruleset  # train's rules stay
        assert "nodes_eval" not in ruleset and "29600" not in ruleset and "torchrun-eval" not in ruleset and "2001" not in ruleset, ruleset
        left = on(node, "ls -d /etc/torchrun/eval.* /etc/torchrun/firewall.d/eval.nft /etc/systemd/system/torchrun-eval.service* "
                        "/opt/torchrun/jobs/eval 2>/dev/null").stdout
        assert left == "", left
        assert on(node, "systemctl show -p LoadState --value torchrun-eval.service").stdout.strip() == "not-found"
        assert on(node, "getent passwd torchrun-eval || getent group torchrun-eval").returncode != 0
        reserved = on(node, "cat /proc/sys/net/ipv4/ip_local_reserved_ports").stdout
        assert "29600" not in reserved and "29500" in reserved, reserved
        assert on(node, "ls -A /var/lib/torchrun/eval; stat -c '%U %a' /var/lib/torchrun/eval").stdout.split() == ["checkpoints", "root", "700"]
        assert on(node, "test -s /etc/torchrun/train.env").returncode == 0
    # eval's user is gone, and root is nobody on the shared storage: read it on the storage's own disk.
    assert sorted(p.name for p in (sandbox.SHARED_DISK / "eval").iterdir()) == ["checkpoints"]
    assert (sandbox.SHARED_DISK / "eval" / "checkpoints" / "kept.ckpt").read_text() == "w\n"
    # train trained on through the removal.
    since = on("node1", "date +%s").stdout.strip()
    assert wait_for(lambda: re.search(r"\] epoch [0-9]+/300", log_since("node1", since)), 60) is not None
    assert prop("node2", "ActiveState") == "active"

    again = ok(playbook("remove", EVAL))
    assert recap_changed(again, "node1") == 0 and recap_changed(again, "node2") == 0, again[-3000:]
    ok(playbook("stop"))


@pytest.mark.slow  # 25 s: make test-slow (the catalogue has both cases; the master port's on the sandbox)
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"torchrun_job": "clash", "torchrun_master_port": 29500},
         "node1: torchrun_master_port=29500 is already the port of job train on this node; give each job its own port"),
        ({"torchrun_job": "clash", "torchrun_master_port": 29700, "torchrun_collective_port_range": [54000, 55999]},
         "node2: torchrun_collective_port_range=54000-55999 differs from 52000-53999 of job train on this node"),
    ],
)
def test_a_job_clashing_with_another_is_refused(cluster, extra, message):
    proc = playbook("setup", extra)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and message in out, out[-3000:]
    for node in ("node1", "node2"):
        assert on(node, "test -e /etc/torchrun/clash.env || test -e /etc/systemd/system/torchrun-clash.service").returncode == 1


@pytest.mark.slow  # 33 s: make test-slow (the connectivity report's logic is unit-tested)
def test_a_planted_fault_is_named_and_nothing_launches(cluster):
    # A drop rule in a table of the site's own, between node2 and node1 on one collective port.
    on("node1", "nft add table inet fault && nft add chain inet fault input '{ type filter hook input priority -10; }' && "
                "nft add rule inet fault input ip saddr 198.18.0.12 tcp dport 52000 drop")
    before = prop("node1", "InvocationID")
    try:
        proc = run_playbook("train", "-e", json.dumps(SLOW_JOB))
        out = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0
        assert "connectivity: 1 of 3 connection(s) failed" in out, out[-3000:]
        assert "node2 -> node1 198.18.0.11:52000 timed out" in out, out[-3000:]
        report = json.loads((harness.ROOT / "torchrun-connectivity.json").read_text())  # every cell, on the controller
        assert report["failures"] == ["node2 -> node1 198.18.0.11:52000 timed out"] and report["checked"] == 3, report
        picture = (harness.ROOT / "torchrun-connectivity.svg").read_text()  # its picture beside it, the failed cell red
        assert '<g class="cell failed" data-row="node2" data-column="node1"><title>node2 -&gt; node1: 52000 timed out</title>' in picture
        assert re.search(r"from \\+ to +node1 +node2\W+node1 +- +ok\W+node2 +52000 timed out +-", out), out[-3000:]
        assert "Start torchrun on every node together" not in out
        assert prop("node1", "InvocationID") == before
    finally:
        on("node1", "nft delete table inet fault")


def test_a_drifted_node_is_named_and_nothing_launches(cluster):
    # A second Lightning wheel in the wheelhouse (fetched through this machine's pip configuration).
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "lightning==2.6.5", "--dest", str(sandbox.CACHE / "wheels")], check=True, timeout=300)
    pip = ("/opt/torchrun/venv/bin/pip install --quiet --no-deps --no-index --trusted-host %s --find-links %s "
           "lightning==%%s" % (sandbox.HOST_ADDR, sandbox.WHEEL_URL))
    assert on("node2", pip % "2.6.5").returncode == 0
    before = prop("node1", "InvocationID")
    try:
        report = run_playbook("report")
        out = " ".join((report.stdout + report.stderr).split())
        assert report.returncode != 0
        assert "stack drift: 1 component(s) differ between the nodes" in out, out[-3000:]
        assert "lightning: node1 2.6.6, node2 2.6.5" in out, out[-3000:]
        launch = run_playbook("launch", "-e", json.dumps(SLOW_JOB))
        out = " ".join((launch.stdout + launch.stderr).split())
        assert launch.returncode != 0 and "lightning: node1 2.6.6, node2 2.6.5" in out, out[-3000:]
        assert prop("node1", "InvocationID") == before
    finally:
        assert on("node2", pip % "2.6.6").returncode == 0
    report = run_playbook("report")
    assert "stack: the 2 node(s) run the same versions" in " ".join(ok(report).split())


@pytest.mark.slow  # 11 s: make test-slow
def test_differing_mtus_are_reported(cluster):
    on("node2", "ip link set host0 mtu 1400")
    try:
        out = " ".join(ok(run_playbook("setup", "--tags", "connectivity", "-e", json.dumps(SLOW_JOB))).split())
        assert ("WARNING: the cluster interfaces differ between nodes (node1 host0 mtu 1500, node2 host0 mtu 1400)" in out), out[-3000:]
    finally:
        on("node2", "ip link set host0 mtu 1500")
    out = ok(run_playbook("setup", "--tags", "connectivity", "-e", json.dumps(SLOW_JOB)))
    assert "WARNING: the cluster interfaces differ" not in out


def test_own_names_on_loopback_are_reported_and_harmless(cluster):
    # The sandbox keeps Debian's "127.0.1.1 <name>" line on every node; the job ran regardless.
    out = " ".join(cluster.split())
    assert "NOTE: the own name of node1 (127.0.1.1), node2 (127.0.1.1) resolves to a loopback address" in out, out[-3000:]


def reaches(source, port=29500, target="198.18.0.11"):
    """Whether a TCP connection from ``source`` (a node or the outsider) to node1's port opens."""
    return harness.connect(source, target, port, seconds=2) == 0


def standin(port):
    """A listener on one of the job's ports of node1, as the job's user (the job's own would be there)."""
    on("node1", "systemd-run --unit=standin-%d --collect -p User=torchrun-train -p RuntimeMaxSec=300 /usr/bin/python3 -c "
                "'import socket; s=socket.create_server((\"::\", %d), family=socket.AF_INET6, dualstack_ipv6=True); "
                "[s.accept()[0].close() for _ in iter(int, 1)]'" % (port, port))
    assert wait_for(lambda: ":%d " % port in on("node1", "ss -Hltn").stdout, 10) is not None


@pytest.fixture()
def store_standin():
    """Where the job's store would listen: node1's master port."""
    standin(29500)
    yield
    on("node1", "systemctl stop standin-29500")


@pytest.mark.parametrize("site_action", [
    "nft -f /etc/nftables.conf",                         # the usual Debian way: starts with flush ruleset
    "nft flush ruleset",
    "systemctl start nftables && systemctl reload nftables",
    "systemctl restart nftables",
    "systemctl start nftables && systemctl stop nftables",  # Debian's ExecStop is a flush too
])
def test_the_store_stays_closed_to_outsiders_after_the_site_reloads_its_ruleset(cluster, store_standin, site_action):
    assert reaches("node2") and not reaches("outsider")
    assert on("node1", site_action).returncode == 0
    # The guard (nft monitor) or the nftables.service hooks put the table back at once.
    assert wait_for(lambda: on("node1", "nft list set inet torchrun nodes_train").returncode == 0, 5) is not None
    assert not reaches("outsider"), "an outsider reached the store after: %s" % site_action
    assert reaches("node2")
    on("node1", "systemctl stop nftables")


def test_setup_restores_live_rules_that_are_gone_and_says_changed(cluster):
    # A port of the collective range: setup's preflight would rightly refuse a master port in use.
    standin(52100)
    try:
        on("node1", "systemctl stop torchrun-firewall-guard; nft flush ruleset")
        assert reaches("outsider", 52100)  # nothing guards the job's ports now: what setup must notice
        out = ok(playbook("setup", None, "--tags", "firewall"))
        # The guard is started again, and loads the rule set as it starts (else the rules check sees
        # them gone and the rule set is loaded again): either way setup says changed on node1 only.
        assert (re.search(r"TASK \[onprem.torchrun.firewall : Load the rule set now and at boot, and guard it\][^\n]*\n"
                          r"(ok: [^\n]*\n){0,3}changed: \[node1\] => \(item=torchrun-firewall-guard.service\)", out)
                or re.search(r"TASK \[onprem.torchrun.firewall : Load the rule set again, since the job's rules are gone from the live "
                             r"ruleset\][^\n]*\n(skipping: \[node2\]\n)?changed: \[node1\]", out)), out[-3000:]
        assert re.search(r"node2 +: ok=\d+ +changed=0 ", out), out[-3000:]
        assert not reaches("outsider", 52100) and reaches("node2", 52100)
        assert on("node1", "systemctl is-active torchrun-firewall-guard").stdout.strip() == "active"
        status = " ".join(ok(playbook("status")).split())
        assert re.search(r"node1 0 [a-z]+( \([a-z-]+\))? [0-9-]+ yes ", status), status[-2000:]
    finally:
        on("node1", "systemctl stop standin-52100")


@pytest.mark.slow  # 17 s: make test-slow
def test_status_says_when_the_rules_are_not_live(cluster):
    on("node2", "systemctl stop torchrun-firewall-guard; nft flush ruleset")
    try:
        status = " ".join(ok(playbook("status")).split())
        assert re.search(r"node2 1 [a-z]+( \([a-z-]+\))? [0-9-]+ no ", status), status[-2000:]
    finally:
        ok(playbook("setup", None, "--tags", "firewall"))


def test_a_job_does_not_start_without_its_rules(cluster):
    # The guard cannot put them back (its unit is gone), and only a chain is flushed: the table and
    # the job's set are still there, which the old check (nft list set) took for live rules.
    on("node1", "systemctl stop torchrun-firewall-guard; mv /etc/systemd/system/torchrun-firewall-guard.service /root/; "
                "systemctl daemon-reload; nft flush chain inet torchrun output")
    try:
        started = on("node1", "systemctl reset-failed %s; systemctl start %s" % (UNIT, UNIT))
        assert started.returncode != 0 and "dependency" in started.stderr.lower(), started.stderr
        assert prop("node1", "ActiveState") != "active" and workers("node1") == "0"
        journal = on("node1", "journalctl -u torchrun-rules@train -n 5 -o cat --no-pager").stdout
        assert "differs from what /etc/torchrun/firewall.nft loads" in journal, journal
        # The check is a root unit of its own: the job's unit runs no root step that reads its environment.
        assert prop("node1", "ExecStartPre") == "" and "torchrun-rules@train.service" in prop("node1", "Requires")
    finally:
        on("node1", "systemctl stop %s; systemctl reset-failed %s; mv /root/torchrun-firewall-guard.service /etc/systemd/system/; "
                    "systemctl daemon-reload" % (UNIT, UNIT))
        ok(playbook("setup", None, "--tags", "firewall"))


# ---- the job is the trust boundary: shell users on any node, squatters, root and links, operators ----
MALLORY = "mallory"  # an ordinary shell account on every node, as researchers have on shared servers
CONNECT = "python3 -c 'import socket; socket.create_connection((\"%s\", %d), timeout=3)'"


def opens(node, user, address, port):
    """How a TCP connection from ``user`` on ``node`` to ``address:port`` ends: open, refused or timeout."""
    proc = on(node, "runuser -u %s -- %s" % (user, CONNECT % (address, port)))
    if proc.returncode == 0:
        return "open"
    return "refused" if "ConnectionRefusedError" in proc.stderr else "timeout" if "TimeoutError" in proc.stderr else proc.stderr


@pytest.fixture()
def mallory(cluster):
    for node in ("node1", "node2"):
        # A uid of its own: torchrun_uid numbers of the tests' jobs (2000, 2001) must stay free.
        on(node, "id %s >/dev/null 2>&1 || useradd -m -u 3000 %s" % (MALLORY, MALLORY))
    return MALLORY


def listening(node, port, user):
    """A listener on ``port`` of ``node`` as ``user`` (the job's own would be there), until stopped."""
    on(node, "systemd-run --unit=listen-%d --collect -p User=%s -p RuntimeMaxSec=300 /usr/bin/python3 -c "
             "'import socket; s=socket.create_server((\"::\", %d), family=socket.AF_INET6, dualstack_ipv6=True); "
             "[s.accept()[0].close() for _ in iter(int, 1)]'" % (port, user, port))
    assert wait_for(lambda: ":%d " % port in on(node, "ss -Hltn").stdout, 10) is not None


def test_a_shell_user_on_a_peer_node_reaches_neither_the_store_nor_the_collective_ports(cluster, mallory):
    """Static rendezvous: the store on the master port, a listener of the job in the collective range.
    The job keeps running for the tests after this one (a partial stop, another inventory's stop)."""
    launch_and_join()
    listening("node1", 52100, "torchrun-train")
    try:
        for port in (29500, 52100):
            assert opens("node2", "torchrun-train", "198.18.0.11", port) == "open", port  # the job's own user does
            assert opens("node2", mallory, "198.18.0.11", port) == "refused", port       # a shell user on the peer does not
            assert opens("node1", mallory, "127.0.0.1", port) == "refused", port         # nor on the master itself
    finally:
        on("node1", "systemctl stop listen-52100")


def test_a_stop_of_part_of_the_group_is_refused_and_the_job_runs_on(cluster):
    out = " ".join(ok_not(playbook("stop", None, "--limit", "node2")).split())
    assert "node1: this play leaves out node1 of group trainers" in out, out[-3000:]
    for node in ("node1", "node2"):
        assert prop(node, "ActiveState") == "active" and workers(node) != "0", node


def test_a_job_another_inventory_installed_is_not_stopped(cluster, tmp_path):
    # The same job name from another inventory's group (its own nodes, its own order). setup.yml
    # refuses it the same way (the validator's ownership area, run by preflight: a catalogue case).
    other = tmp_path / "other.yml"
    other.write_text(yaml.safe_dump({"all": {"children": {"others": {"hosts": {"node2": {"ansible_host": "198.18.0.12"},
                                                                            "node1": {"ansible_host": "198.18.0.11"}}}}}}))
    out = " ".join(ok_not(playbook("stop", {"torchrun_group": "others"}, "-i", str(other))).split())
    assert "job train on this node was installed by another cluster (trainers:" in out, out[-3000:]
    assert "take it over with -e job_takeover=true" in out
    for node in ("node1", "node2"):
        assert prop(node, "ActiveState") == "active", node


def test_our_chains_flushed_while_a_job_runs_are_back_within_seconds(cluster, mallory):
    try:
        assert prop("node1", "ActiveState") == "active"  # the job of the tests above trains on
        assert not reaches("outsider") and opens("node2", mallory, "198.18.0.11", 29500) == "refused"
        on("node1", "nft flush chain inet torchrun input; nft flush chain inet torchrun output")
        took = wait_for(lambda: on("node1", "/usr/local/sbin/torchrun-firewall-guard check train").returncode == 0, 10)
        assert took is not None, on("node1", "journalctl -u torchrun-firewall-guard -n 10 -o cat").stdout
        print("chains flushed: the guard loaded the rules again within %.1f s" % took)
        assert not reaches("outsider")
        assert opens("node1", mallory, "127.0.0.1", 29500) == "refused"
        assert prop("node1", "ActiveState") == "active"  # the job trained on
    finally:
        ok(playbook("stop"))


def test_a_squatter_on_the_master_port_between_two_starts_is_never_answered(cluster, mallory):
    # The master's agent alone (its peer never starts) dies; its unit waits launcher_restart_sec (15 s)
    # before the next start: the port is free, and anyone may bind it.
    on("node1", "systemctl reset-failed %s; systemctl start %s" % (UNIT, UNIT))
    assert wait_for(lambda: ":29500 " in on("node1", "ss -Hltn").stdout, 60) is not None
    on("node1", "kill -9 %s" % prop("node1", "MainPID"))
    assert wait_for(lambda: prop("node1", "SubState") == "auto-restart", 10) is not None
    assert wait_for(lambda: ":29500 " not in on("node1", "ss -Hltn").stdout, 10) is not None
    listening("node1", 29500, mallory)  # bind() works: firewall rules never stop binding
    try:
        # The peers' agents (the job's user) would talk to whatever answers: nothing answers them.
        assert opens("node2", "torchrun-train", "198.18.0.11", 29500) == "timeout"
        assert opens("node1", "torchrun-train", "127.0.0.1", 29500) == "timeout"
    finally:
        on("node1", "systemctl stop listen-29500 %s; systemctl reset-failed %s" % (UNIT, UNIT))


def test_root_never_follows_a_link_the_jobs_user_planted(cluster):
    # The job's user links a root-only file into its own folder; setup gives the folder to the user again.
    on("node1", "install -m 600 -o root -g root /dev/null /etc/root-only; "
                "runuser -u torchrun-train -- ln -sfn /etc/root-only /var/lib/torchrun/train/planted")
    try:
        ok(playbook("setup", None, "--tags", "launcher"))
        assert on("node1", "stat -c '%U %G %a' /etc/root-only").stdout.split() == ["root", "root", "600"]
        # In place of one of the folders root gives the job, a link is refused by name before any change.
        on("node1", "mv /var/lib/torchrun/train/checkpoints /var/lib/torchrun/train/checkpoints.real; "
                    "runuser -u torchrun-train -- ln -s /etc /var/lib/torchrun/train/checkpoints")
        refused = " ".join(ok_not(playbook("setup", None, "--tags", "launcher")).split())
        assert "node1: /var/lib/torchrun/train/checkpoints is a symbolic link (to /etc), which the job's user can plant" in refused
        assert on("node1", "stat -c '%U' /etc").stdout.strip() == "root"
    finally:
        on("node1", "rm -f /etc/root-only /var/lib/torchrun/train/planted /var/lib/torchrun/train/checkpoints; "
                    "test -d /var/lib/torchrun/train/checkpoints.real && mv /var/lib/torchrun/train/checkpoints.real /var/lib/torchrun/train/checkpoints")


def test_a_second_launch_of_the_job_is_refused_naming_who_launches(cluster):
    # Every launch above gave its lock back, however it ended.
    assert on("node1", "ls -A /run/torchrun/locks").stdout.strip() == ""
    on("node1", "mkdir -p /run/torchrun/locks/train && echo '{\"token\": \"theirs\", \"owner\": \"ops@ctl2 (Launch the torchrun job)\", "
                "\"since\": \"2026-12-03T08:00:00Z\"}' > /run/torchrun/locks/train/holder.json")
    try:
        out = " ".join(ok_not(playbook("launch", {"job_wait": False})).split())
        assert "job train is being launched by ops@ctl2 (Launch the torchrun job) since 2026-12-03T08:00:00Z" in out, out[-3000:]
        for node in ("node1", "node2"):
            assert prop(node, "ActiveState") != "active", node
        assert on("node1", "cat /run/torchrun/locks/train/holder.json").stdout.count("theirs") == 1  # theirs, left alone
    finally:
        on("node1", "rm -rf /run/torchrun/locks/train")


def test_a_launch_that_fails_on_one_node_stops_the_job_everywhere(cluster):
    on("node2", "chmod a-x /opt/torchrun/venv/bin/torchrun")  # node2's unit cannot start
    try:
        proc = playbook("launch", {"job_wait": False})
        out = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0
        assert "launch failed: node2 did not start; the job was stopped on every node" in out, out[-3000:]
        for node in ("node1", "node2"):  # node1 is not left waiting for its peer
            assert prop(node, "ActiveState") in ("inactive", "failed"), node
    finally:
        on("node2", "chmod a+x /opt/torchrun/venv/bin/torchrun")


# The sandbox has no RDMA hardware: a node gets the sysfs tree of an InfiniBand node (two ACTIVE
# HDR ports, mlx5_0:1 and mlx5_1:1, and a DOWN one, mlx5_2:1, laid out as the kernel's
# /sys/class/infiniband) mounted over its /sys/class, beside its own entries, and the character
# devices of /dev/infiniband. Everything else is real: node_probe reads the tree, systemd loads the
# unit's drop-in, systemctl show reports its properties.
INFINIBAND = r"""
set -e
mkdir -p /run/sysclass
mountpoint -q /run/sysclass || mount -t tmpfs -o mode=755 sysclass /run/sysclass
cp -a /sys/class/. /run/sysclass/ 2>/dev/null || true
for dev in mlx5_0:4:ACTIVE mlx5_1:4:ACTIVE mlx5_2:1:DOWN; do
  name=${dev%%:*}; state=${dev#*:}; p=/run/sysclass/infiniband/$name/ports/1
  mkdir -p $p/gids $p/gid_attrs/types $p/gid_attrs/ndevs /run/sysclass/infiniband/$name/device/net
  echo "${state%%:*}: ${state#*:}" > $p/state; echo "5: LinkUp" > $p/phys_state
  echo "200 Gb/sec (4X HDR)" > $p/rate; echo InfiniBand > $p/link_layer
  echo fe80:0000:0000:0000:0e42:a1ff:fe3c:5d10 > $p/gids/0
done
mountpoint -q /sys/class/infiniband 2>/dev/null || mount --bind /run/sysclass /sys/class
mkdir -p /dev/infiniband
for n in uverbs0:231:192 uverbs1:231:193 rdma_cm:10:58; do
  f=/dev/infiniband/${n%%:*}; rest=${n#*:}; [ -e $f ] || mknod $f c ${rest%%:*} ${rest#*:}
done
"""
FABRIC_ENV = "/etc/torchrun/train.fabric.env"
FABRIC_DROPIN = "/etc/systemd/system/%s.d/fabric.conf" % UNIT


@pytest.fixture()
def infiniband(cluster):
    for node in ("node1", "node2"):
        done = on(node, INFINIBAND)
        assert done.returncode == 0, done.stderr
    try:
        yield
    finally:
        for node in ("node1", "node2"):
            on(node, "umount /sys/class; umount /run/sysclass; rm -rf /dev/infiniband")
        install()


def read_file(node, path):
    found = on(node, "cat %s" % path)
    return found.stdout if found.returncode == 0 else None


@pytest.mark.slow  # 51 s: make test-slow (the fabric plan and the unit's drop-in are unit-tested; this is systemd reading them)
def test_rdma_ports_open_the_unit_to_them_and_socket_closes_it_again(infiniband):
    install()
    for node in ("node1", "node2"):
        assert prop(node, "LimitMEMLOCK") == "infinity"
        allowed = prop(node, "DeviceAllow")
        for device in ("/dev/infiniband/rdma_cm rw", "/dev/infiniband/uverbs0 rw", "/dev/infiniband/uverbs1 rw"):
            assert device in allowed, allowed
        env = read_file(node, FABRIC_ENV)
        assert "NCCL_IB_HCA==mlx5_0:1,mlx5_1:1\n" in env, env  # exact names; the DOWN port left out
        assert "RDMA ports mlx5_0:1, mlx5_1:1 (InfiniBand, 200 Gb/sec (4X HDR))" in env
    assert recap_changed(install()) == 0  # idempotent

    install({"torchrun_fabric": "socket"})
    assert read_file("node1", FABRIC_DROPIN) is None
    assert prop("node1", "LimitMEMLOCK") != "infinity" and "infiniband" not in prop("node1", "DeviceAllow")
    assert "NCCL_IB_DISABLE=1\n" in read_file("node1", FABRIC_ENV) and "NCCL_IB_HCA" not in read_file("node1", FABRIC_ENV)

    proc = playbook("setup", {"torchrun_fabric": "rdma", "torchrun_fabric_hcas": ["mlx5_2"]}, "--tags", "launcher")
    out = " ".join(ok_not(proc).split())
    assert ("node1: torchrun_fabric=rdma but the node has no ACTIVE RDMA port among torchrun_fabric_hcas=mlx5_2 "
            "(mlx5_0:1 ACTIVE, mlx5_1:1 ACTIVE, mlx5_2:1 DOWN)") in out, out[-3000:]
    assert "NCCL_IB_DISABLE=1\n" in read_file("node1", FABRIC_ENV)  # refused before any change


@pytest.mark.slow  # 40 s: make test-slow
def test_a_hung_rank_is_named_from_every_ranks_stack(cluster, tmp_path):
    # Global rank 3 (node2) stops in its own code at the end of an epoch; the other ranks go on into
    # the next collective and wait there. stacks.yml reads every rank's stack and names rank 3.
    stalled = {"torchrun_script_args": ["--epochs", "300", "--sleep-per-epoch", "0.5", "--stall-rank", "3"], "job_wait": False}
    install(stalled)
    try:
        ok(playbook("launch", stalled))
        assert wait_for(lambda: "rank 3 stalls" in current_log("node2"), 120) is not None
        time.sleep(3)  # the others reach the next collective
        # Two real flight records (torch 2.13, gloo, two ranks) in node1's job folder, written by the
        # job's user as its ranks would: torch's analyser reads them on the master as that user.
        for rank in (0, 1):
            record = (harness.ROOT / "tests" / "unit" / "fixtures" / "flight" / ("gloo_2ranks_rank%d.pkl" % rank)).read_bytes()
            subprocess.run(sandbox.ssh_command("node1") + ["runuser -u torchrun-train -- tee /var/lib/torchrun/train/nccl_trace_rank_%d"
                                                           " >/dev/null" % rank], input=record, check=True, timeout=60)
        out = " ".join(ok(playbook("stacks", dict(stalled, job_logs_dir=str(tmp_path)))).split())
        # torch 2.13's analyser fails on gloo's records (KeyError in build_collectives): ours reads them.
        assert re.search(r"flight records: torch's analyser \(torch\.distributed\.flight_recorder\.fr_trace\) on node1 as torchrun-train "
                         r"failed on them \(KeyError: \('0', \d\)\); read by onprem\.torchrun\.hang_report instead",
                         out.replace("''", "'")), out[-3000:]  # the debug output doubles a single quote
        assert "rank 3 (node2) is the one the others wait for: at lightning_synthetic.py:" in out, out[-3000:]
        assert "ranks 0, 1, 2 wait in " in out, out[-3000:]
        assert sorted(p.name for p in tmp_path.glob("train-stack-rank*")) == ["train-stack-rank%d-node%d.txt" % (r, r // 2 + 1)
                                                                                for r in range(4)]
    finally:
        for node in ("node1", "node2"):  # a stalled rank would hold a graceful stop until its timeout
            on(node, "systemctl kill -s KILL %s; systemctl stop %s; systemctl reset-failed %s; rm -f /var/lib/torchrun/train/nccl_trace_rank_*"
               % (UNIT, UNIT, UNIT))
        install()


@pytest.mark.slow  # 31 s: make test-slow
def test_a_join_timeout_names_the_node_that_never_joined(cluster):
    # node2's unit is stopped the moment it becomes active, long before its agent has imported torch:
    # node1's agent waits in the rendezvous, node2's is gone. The launch names node2, not node1.
    on("node2", "systemd-run --unit=verify-stopper --collect -p RuntimeMaxSec=60 /bin/sh -c "
                "'until systemctl -q is-active %s; do sleep 0.05; done; systemctl stop %s'" % (UNIT, UNIT))
    try:
        proc = playbook("launch", {"job_wait": False, "job_join_timeout": 10})
        out = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0
        assert "launch failed: node2 never joined (its unit ended: inactive/dead, result success); node1 waited for it" in out, out[-3000:]
        assert "node1 did not join" not in out
        for node in ("node1", "node2"):
            assert prop(node, "ActiveState") in ("inactive", "failed"), node
    finally:
        on("node2", "systemctl stop verify-stopper")


@pytest.mark.slow  # 60 s: make test-slow
def test_a_relaunch_after_a_settings_change_restarts_with_the_new_settings(cluster):
    launch_and_join()
    before = {node: prop(node, "InvocationID") for node in ("node1", "node2")}
    changed = {"torchrun_script_args": ["--epochs", "301", "--sleep-per-epoch", "0.5"], "job_wait": False}
    try:
        install(changed)  # installs the new settings; the running job is left alone
        assert {node: prop(node, "InvocationID") for node in ("node1", "node2")} == before
        out = " ".join(ok(playbook("launch", changed)).split())
        assert "runs with settings older than those setup.yml installed on node1, node2: restarting it on every node" in out, out[-3000:]
        for node in ("node1", "node2"):
            assert prop(node, "InvocationID") != before[node]
        assert wait_for(lambda: re.search(r"\] epoch [0-9]+/301", current_log("node1")), 120) is not None
    finally:
        ok(playbook("stop", changed))
        install()


@pytest.mark.slow  # 110 s: make test-slow
def test_a_node_that_loses_power_mid_job_leaves_its_peer_failed_in_bounded_time(cluster):
    # node2 falls silent mid-step, as when its power is cut: its bridge port goes down, so node1 gets
    # not a packet more (no FIN, no RST). Short timeouts: node1's collective gives up after 15 s
    # (torchrun_collective_timeout), then each start waits 20 s for node2 to join and fails; burst + 1
    # starts fit the derived window (4 x (20 + 2 + 30) s), so node1's unit ends failed instead of
    # hanging in the collective or restarting forever.
    job = {"torchrun_collective_timeout": 15, "torchrun_rdzv_join_timeout": 20, "launcher_restart_sec": 2, "job_wait": False}
    install(job)
    unit = on("node1", "systemctl cat %s" % UNIT).stdout
    assert "StartLimitIntervalSec=208" in unit and '"--rdzv-conf=timeout=20"' in unit, unit
    assert "TORCHRUN_COLLECTIVE_TIMEOUT=15" in on("node1", "cat /etc/torchrun/train.env").stdout
    try:
        launch_and_join(job)
        subprocess.run(["ip", "link", "set", "vb-node2", "down"], check=True)
        took = wait_for(lambda: prop("node1", "ActiveState") == "failed", 15 + 4 * 52, step=1)
        print("node2 cut off mid-job: node1's unit failed after %s s" % (took and round(took)))
        journal = on("node1", "journalctl -u %s -n 400 -o cat --no-pager" % UNIT).stdout
        assert took is not None, journal[-4000:]
        assert re.search(r"[Tt]imed out|[Tt]imeout", journal), journal[-4000:]
        assert "Start request repeated too quickly" in journal and "waiting for clients. 1/2 clients joined" in journal, journal[-4000:]
        # status.yml reports what it can reach and names what it cannot (and exits non-zero for it).
        status = playbook("status", job)
        table = " ".join(status.stdout.split())
        assert re.search(r"node1 0 failed \(start-limit-hit\)", table) and re.search(r"node2 1 unreachable ", table), table[-2000:]
    finally:
        subprocess.run(["ip", "link", "set", "vb-node2", "up"], check=False)
        ok(playbook("stop", job))
        install()


@pytest.mark.slow  # about 4 minutes: make test-slow
def test_a_users_project_resumes_on_every_rank_when_the_group_grows_and_shrinks(cluster):
    # Rank-0 checkpoints on shared storage: trained on 2 nodes, then on 3 (node3 new and bare: the
    # full setup), then on 2 again (node3 gone from the group and from the peers' rules). Each time
    # every rank of the new group starts at the epoch the last run ended with.
    as_job("node1", "rm -f %s/*" % CHECKPOINTS)
    try:
        train_project(project_job(2), 2, 0, ["node1", "node2"])
        harness.tool("up", "--nodes", "3")
        train_project(project_job(4), 4, 2, ["node1", "node2", "node3"], setup=())
        assert on("node3", "id -u torchrun-train").stdout.strip() == "2000"
        harness.tool("up", "--nodes", "2")
        train_project(project_job(6), 6, 4, ["node1", "node2"], setup=("--tags", "firewall,launcher"))
        assert sandbox.address_of("node3") not in on("node1", "nft list table inet torchrun").stdout
    finally:
        harness.tool("up", "--nodes", "2")
        as_job("node1", "rm -f %s/*" % CHECKPOINTS)
        install()


@pytest.mark.slow  # 37-44 s: make test-slow (remove.yml itself is in make test, above; this is the node's last job: table, guard, port pin)
def test_removing_the_nodes_last_job_leaves_the_node_as_the_site_had_it(cluster):
    """The module's last test: train, the nodes' last job, removed with its data (the fixture's stop then has nothing to stop)."""
    on("node1", "nft add table inet site_own; nft add chain inet site_own input '{ type filter hook input priority 10; }'")
    out = ok(playbook("remove", {"job_remove_data": True}))
    assert "Its checkpoints went too, as asked." in out, out[-3000:]
    for node in ("node1", "node2"):
        assert on(node, "nft list table inet torchrun").returncode != 0  # our table is gone ...
        assert "table inet site_own" in on(node, "nft list tables").stdout or node == "node2"  # ... and no other
        for unit in ("torchrun-firewall-guard.service", "torchrun-firewall.service", UNIT):
            assert on(node, "systemctl show -p LoadState --value %s" % unit).stdout.strip() == "not-found", unit
        left = on(node, "ls -d /etc/torchrun/* /etc/sysctl.d/60-torchrun.conf /usr/local/sbin/torchrun-firewall-guard "
                        "/var/lib/torchrun/train /etc/systemd/system/torchrun* 2>/dev/null").stdout
        assert left == "", left
        assert on(node, "cat /proc/sys/net/ipv4/ip_local_port_range").stdout.split() == ["32768", "60999"]
        assert on(node, "cat /proc/sys/net/ipv4/ip_local_reserved_ports").stdout.strip() == ""
        assert on(node, "getent passwd torchrun-train").returncode != 0
    assert not (sandbox.SHARED_DISK / "train").exists()
    again = ok(playbook("remove", {"job_remove_data": True}))
    assert recap_changed(again, "node1") == 0 and recap_changed(again, "node2") == 0, again[-3000:]
    on("node1", "nft delete table inet site_own")
