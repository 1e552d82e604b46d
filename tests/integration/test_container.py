"""The job in its image (torchrun_runtime=podman) on real nodes: the sandbox's training image
(sandbox/container_image.py: the nodes' Debian with a venv from the wheelhouse, shipped to the
nodes as an archive), podman from the distribution, the site's podman configuration the sandbox
writes (sandbox.PODMAN_CONF). Ranks, ports, firewall and the job's user stay as on the host.
test_container_docker.py runs the same checks (tests/integration/container_common.py) with docker.

Needs root (`make test-slow`: about 18 minutes on a 2-core machine).
"""

import os
import re
import shutil
import subprocess

import container_common as common
import harness
import pytest
import sandbox
from container_common import CHECKPOINTS, UNIT, ok, on, playbook

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root"), pytest.mark.slow]
RUNTIME = "podman"


image, cluster = common.fixtures(RUNTIME)


def test_setup_installs_podman_and_the_image_and_a_second_run_changes_nothing(cluster, image):
    for node in ("node1", "node2"):
        assert on(node, "test -e /opt/torchrun/venv").returncode != 0  # nothing of torch on the host: the image carries it
        ids = on(node, "podman image inspect --format '{{.Id}}' %s" % image["torchrun_image"]).stdout.split()
        assert len(ids) == 1 and len(ids[0]) == 64, ids
    common.setup_again_changes_nothing_and_the_report_reads_the_image(image)


def test_the_health_check_measures_in_the_image(cluster, image, tmp_path):
    common.health_check_runs_in_a_container_of_its_own(image, RUNTIME, tmp_path / "healthcheck.json")


def test_the_job_trains_in_its_image_as_its_user_with_the_inventorys_ranks(cluster, image):
    common.launched_with_ranks_and_the_jobs_uid(image, RUNTIME)


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
    # The slow job again, for the tests below, without the project's last.ckpt (another model, which it would resume).
    assert harness.as_job("node1", "rm -rf %s/*" % CHECKPOINTS).returncode == 0
    ok(playbook("setup", image, None, "--tags", "launcher"))


def test_a_node_with_another_image_is_named_and_nothing_starts(cluster, image):
    common.another_image_is_named_and_nothing_starts(image, RUNTIME)


def test_stacks_and_flight_records_are_read_with_the_images_own_tools_as_the_jobs_user(cluster, image, tmp_path):
    if on("node1", "systemctl is-active %s" % UNIT).stdout.strip() != "active":  # the test above leaves it running
        ok(playbook("launch", image, {"job_wait": False}))
        assert harness.wait_for(lambda: re.search(common.EPOCH, harness.current_log("node1")), 240) is not None
    # Two real flight records (torch 2.13, gloo) in node1's
    # job folder, written by the job's user as its ranks would: torch's analyser reads them in the image.
    for rank in (0, 1):
        record = (harness.ROOT / "tests" / "unit" / "fixtures" / "flight" / ("gloo_2ranks_rank%d.pkl" % rank)).read_bytes()
        subprocess.run(sandbox.ssh_command("node1") + ["runuser -u torchrun-train -- tee /var/lib/torchrun/train/nccl_trace_rank_%d"
                                                       " >/dev/null" % rank], input=record, check=True, timeout=60)
    try:  # py-spy from the image, inside the job's container (the host has none): every rank's stack
        out = common.stacks_are_read_in_the_container(image, tmp_path)
    finally:
        on("node1", "rm -f /var/lib/torchrun/train/nccl_trace_rank_*")
    # torch 2.13's analyser, run in the image as the job's user, fails on gloo's records: ours reads them.
    assert re.search(r"flight records: torch's analyser \(torch\.distributed\.flight_recorder\.fr_trace\) on node1 as torchrun-train "
                     r"in %s failed on them \(KeyError: \('0', \d\)\); read by onprem\.torchrun\.hang_report instead"
                     % re.escape(image["torchrun_image"]), out), out[-3000:]
    assert sorted(p.name for p in tmp_path.glob("train-flight-*")) == ["train-flight-nccl_trace_rank_%d-node1.pkl" % r for r in (0, 1)]
    for node in ("node1", "node2"):  # the analyser's run of the image is gone; the job's container runs on
        assert common.containers(node, RUNTIME) == ["torchrun-train"]


def test_stop_saves_a_checkpoint_and_removes_the_containers(cluster, image):
    common.stop_saves_a_checkpoint_and_leaves_no_container(image, RUNTIME)
