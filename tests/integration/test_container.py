"""The job in its image (torchrun_runtime=podman) on real nodes: the sandbox's training image
(sandbox/container_image.py: the nodes' Debian with a venv from the wheelhouse, shipped to the
nodes as an archive), podman from the distribution, the site's podman configuration the sandbox
writes (sandbox.PODMAN_CONF). Ranks, ports, firewall and the job's user stay as on the host.

Needs root (`make test-slow`: about 7.5 minutes on a 2-core machine).
"""

import json
import os
import re
import shutil
import time

import harness
import pytest
from conftest import run_playbook

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root"), pytest.mark.slow]
UNIT = "torchrun-train.service"
SHARED = "/srv/shared"
CHECKPOINTS = SHARED + "/train/checkpoints"
SLOW_JOB = {"torchrun_script_args": ["--epochs", "300", "--sleep-per-epoch", "0.5"], "torchrun_shared_dir": SHARED, "torchrun_uid": 2000}
on = harness.on


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The job's runtime settings for the sandbox's image (torchrun_runtime, torchrun_image, torchrun_image_archive)."""
    path = tmp_path_factory.mktemp("image") / "podman.json"
    harness.tool("container-image", "--vars", str(path))
    return json.loads(path.read_text())


def playbook(name, settings, extra=None, *args):
    return run_playbook(name, "-e", json.dumps(dict(SLOW_JOB, **settings, **(extra or {}))), *args)


ok = harness.ok
wait_for = harness.wait_for
current_log = harness.current_log


@pytest.fixture(scope="module")
def cluster(image):
    with harness.cluster(2):
        setup = playbook("setup", image)
        ok(setup)
        yield setup.stdout
        ok(playbook("stop", image))


def test_setup_installs_podman_and_the_image_and_a_second_run_changes_nothing(cluster, image):
    for node in ("node1", "node2"):
        assert on(node, "test -e /opt/torchrun/venv").returncode != 0  # nothing of torch on the host: the image carries it
        ids = on(node, "podman image inspect --format '{{.Id}}' %s" % image["torchrun_image"]).stdout.split()
        assert len(ids) == 1 and len(ids[0]) == 64, ids
    again = ok(playbook("setup", image))
    assert harness.recap_changed(again, "node1") == 0 and harness.recap_changed(again, "node2") == 0, again[-3000:]
    checked = ok(playbook("setup", image, None, "--check", "--diff"))
    assert harness.recap_changed(checked, "node1") == 0 and harness.recap_changed(checked, "node2") == 0, checked[-3000:]
    # The drift report reads torch and Lightning from the image's venv (the host has none).
    report = ok(playbook("report", image))
    for node in ("node1", "node2"):
        assert re.search(r"^\s*- '?%s\s.*2\.13\.0\+cpu.*2\.6\.6" % node, report, re.M), report[-3000:]


def test_the_health_check_measures_in_the_image(cluster, image, tmp_path):
    report = tmp_path / "healthcheck.json"
    small = {"healthcheck_max_bytes": 4 << 20, "healthcheck_pair_bytes": 4 << 20, "healthcheck_iters": 5, "healthcheck_warmup": 1}
    out = " ".join(ok(playbook("healthcheck", image, dict(small, healthcheck_report=str(report)))).split())
    assert "health check: PASS (gloo, 4 processes on 2 nodes" in out, out[-3000:]
    assert json.loads(report.read_text())["status"] == "pass"
    for node in ("node1", "node2"):
        assert on(node, "podman ps --all --format '{{.Names}}'").stdout.strip() == ""  # the check's container is gone


def test_the_job_trains_in_its_image_as_its_user_with_the_inventorys_ranks(cluster, image):
    ok(playbook("launch", image, {"job_wait": False}))
    assert wait_for(lambda: re.search(r"\] epoch [0-9]+/300", current_log("node1")), 180) is not None
    for node, ranks in (("node1", (0, 1)), ("node2", (2, 3))):
        log = current_log(node)
        for rank in ranks:  # the node rank is the inventory index, inside the container as on the host
            assert "[rank %d] joined: node %d" % (rank, rank // 2) in log, log[-2000:]
        # Every process of the training (the init, torchrun's agent, its 2 workers) runs as the job's user
        # (uid 2000 on the host); root runs the container runtime only.
        listing = on(node, "ps -eo uid=,args=").stdout
        job = [line.split(None, 1) for line in listing.splitlines() if "lightning_synthetic.py" in line]
        assert [uid for uid, _ in job if uid != "0"] == ["2000"] * 4, listing
        assert [args.split()[0] for uid, args in job if uid == "0"] == ["/usr/bin/podman"], listing
        assert on(node, "podman ps --format '{{.Names}}'").stdout.split() == ["torchrun-train"]


def test_the_store_in_the_container_is_closed_to_an_outsider_and_open_to_the_peer(cluster):
    assert harness.connect("node2", "198.18.0.11", 29500, seconds=2) == 0
    assert harness.connect("outsider", "198.18.0.11", 29500, seconds=2) != 0


def test_a_project_trains_in_the_image_whose_venv_is_checked_against_its_requirements(cluster, image, tmp_path):
    project = {"torchrun_project_dir": str(harness.ROOT / "examples" / "project"), "torchrun_module": "trainer.main",
               "torchrun_script_args": ["2"], "job_wait": True, "torchrun_write_paths": ["/srv/outputs"],
               "torchrun_env": {"OUTPUTS": "/srv/outputs"}}
    ok(playbook("stop", image))
    for node in ("node1", "node2"):  # a folder the job was given (bound read-write), besides its home
        assert on(node, "install -d -o torchrun-train -g torchrun-train -m 0750 /srv/outputs").returncode == 0
    # The slow job's last.ckpt (another model) would be resumed by the example (ckpt_path="last"): a new model, a new start.
    assert harness.as_job("node1", "rm -rf %s/*" % CHECKPOINTS).returncode == 0
    ok(playbook("setup", image, project, "--tags", "launcher"))
    since = on("node1", "date +%s").stdout.strip()
    out = ok(playbook("launch", image, project))  # tabulate==0.9.0 is in the image
    assert "success on every node" in out, out[-3000:]
    for node, rank in (("node1", 0), ("node2", 2)):
        # The project's code, its requirement from the image, home and outputs writable, the image read-only.
        log = on(node, "journalctl -o cat -u %s --since @%s" % (UNIT, since)).stdout  # the ended unit's run
        assert re.search(r"rank %d width=\d+ home=/var/lib/torchrun/train home-cache=ok xdg-cache=ok outputs=ok system=refused .*tabulate=0\.9\.0" % rank, log), log[-3000:]
        assert on(node, "ls /srv/outputs").stdout.split() == ["rank%d.txt" % rank, "rank%d.txt" % (rank + 1)]
    # The same project asking for another version: the image's venv does not hold it, and launch says so.
    copy = tmp_path / "project"
    shutil.copytree(project["torchrun_project_dir"], copy)
    (copy / "requirements.txt").write_text("tabulate==0.8.10\n")
    other = dict(project, torchrun_project_dir=str(copy))
    ok(playbook("setup", image, other, "--tags", "launcher"))
    out = " ".join(playbook("launch", image, other).stdout.split())
    assert "node1: /opt/torchrun/venv in %s does not hold what" % image["torchrun_image"] in out, out[-3000:]
    assert "tabulate==0.8.10 (0.9.0 installed)" in out and "build torchrun_image with it" in out, out[-3000:]
    ok(playbook("setup", image, None, "--tags", "launcher"))  # the slow job again, for the tests below


def test_a_node_with_another_image_is_named_and_nothing_starts(cluster, image):
    ok(playbook("stop", image))
    # node2's image replaced by another of the same name (an empty one): what a node that pulled a moved tag has.
    swapped = on("node2", "podman rmi --force {0} && d=$(mktemp -d) && tar -c -C $d . | podman import --quiet - {0}"
                          .format(image["torchrun_image"]))
    assert swapped.returncode == 0, swapped.stderr
    before = on("node1", "systemctl show -p InvocationID --value %s" % UNIT).stdout
    out = " ".join(run_playbook("launch", "-e", json.dumps(dict(SLOW_JOB, **image))).stdout.split())
    assert re.search(r"node2: its %s is image [0-9a-f]{12}.*, node1's is [0-9a-f]{12}.*: the ranks would run different code"
                     % re.escape(image["torchrun_image"]), out), out[-3000:]
    assert on("node1", "systemctl show -p InvocationID --value %s" % UNIT).stdout == before  # node1 did not start either
    # setup loads the archive's image again where it is not the one loaded, and the job starts.
    assert harness.recap_changed(ok(playbook("setup", image)), "node2") > 0
    ok(playbook("launch", image, {"job_wait": False}))
    assert wait_for(lambda: re.search(r"\] epoch [0-9]+/300", current_log("node1")), 180) is not None


def test_stop_saves_a_checkpoint_and_removes_the_containers(cluster, image):
    start = time.time()
    ok(playbook("stop", image))
    assert "SIGTERM: saved %s/last.ckpt" % CHECKPOINTS in current_log("node1")  # SIGTERM reached torchrun inside
    for node in ("node1", "node2"):
        assert on(node, "systemctl show -p ActiveState --value %s" % UNIT).stdout.strip() in ("inactive", "failed")
        assert on(node, "podman ps --all --format '{{.Names}}'").stdout.strip() == ""
    print("stop.yml with containers on 2 nodes: %.1f s" % (time.time() - start))
