"""What the tests of the job in its image share, for either runtime: test_container.py (podman) and
test_container_docker.py (docker). The sandbox's training image (sandbox/container_image.py) is
shipped to the nodes as an archive; the job is a slow one on shared storage with a fixed uid."""

import json
import re
import time

import harness
import pytest
from conftest import run_playbook

UNIT = "torchrun-train.service"
SHARED = "/srv/shared"
CHECKPOINTS = SHARED + "/train/checkpoints"
SLOW_JOB = {"torchrun_script_args": ["--epochs", "300", "--sleep-per-epoch", "0.5"], "torchrun_shared_dir": SHARED, "torchrun_uid": 2000}
EPOCH = r"\] epoch [0-9]+/300"  # rank 0's line, on node1
on = harness.on
ok = harness.ok


def image_settings(folder, runtime):
    """The job's runtime settings for the sandbox's image (torchrun_runtime, torchrun_image, torchrun_image_archive)."""
    path = folder / ("%s.json" % runtime)
    harness.tool("container-image", "--runtime", runtime, "--vars", str(path))
    settings = json.loads(path.read_text())
    assert settings["torchrun_runtime"] == runtime
    return settings


def playbook(name, settings, extra=None, *args):
    """A playbook with the slow job in its image (``settings``), and ``extra`` settings."""
    return run_playbook(name, "-e", json.dumps(dict(SLOW_JOB, **settings, **(extra or {}))), *args)


def fixtures(runtime, extra=None):
    """The module's fixtures for ``runtime``: image (its settings, with ``extra`` settings of the job) and
    cluster (two nodes set up for the job in its image; the job stopped at the end)."""

    @pytest.fixture(scope="module")
    def image(tmp_path_factory):
        return dict(image_settings(tmp_path_factory.mktemp("image"), runtime), **(extra or {}))

    @pytest.fixture(scope="module")
    def cluster(image):
        with harness.cluster(2):
            setup = playbook("setup", image)
            ok(setup)
            yield setup.stdout
            ok(playbook("stop", image))

    return image, cluster


def containers(node, runtime, running_only=False):
    """The names of the node's containers."""
    return on(node, "%s ps %s--format '{{.Names}}'" % (runtime, "" if running_only else "--all ")).stdout.split()


def setup_again_changes_nothing_and_the_report_reads_the_image(settings):
    """A second setup and its --check change nothing; the drift report reads torch and Lightning in the image."""
    again = ok(playbook("setup", settings))
    assert harness.recap_changed(again, "node1") == 0 and harness.recap_changed(again, "node2") == 0, again[-3000:]
    checked = ok(playbook("setup", settings, None, "--check", "--diff"))
    assert harness.recap_changed(checked, "node1") == 0 and harness.recap_changed(checked, "node2") == 0, checked[-3000:]
    report = ok(playbook("report", settings))  # the host has no venv: read from the image's
    for node in ("node1", "node2"):
        assert re.search(r"^\s*- '?%s\s.*2\.13\.0\+cpu.*2\.6\.6" % node, report, re.M), report[-3000:]


def health_check_runs_in_a_container_of_its_own(settings, runtime, report):
    small = dict(harness.HEALTHCHECK_SMALL, healthcheck_report=str(report))
    out = " ".join(ok(playbook("healthcheck", settings, small)).split())
    assert "health check: PASS (gloo, 4 processes on 2 nodes" in out, out[-3000:]
    assert json.loads(report.read_text())["status"] == "pass"
    for node in ("node1", "node2"):
        assert containers(node, runtime) == []  # the check's container is gone


def launched_with_ranks_and_the_jobs_uid(settings, runtime):
    """The slow job launched in its image: the inventory's ranks, every process of the training as the
    job's user (uid 2000), root running the runtime's client only. Returns each node's process list."""
    ok(playbook("launch", settings, {"job_wait": False}))
    assert harness.wait_for(lambda: re.search(EPOCH, harness.current_log("node1")), 240) is not None
    listings = {}
    for node, ranks in (("node1", (0, 1)), ("node2", (2, 3))):
        log = harness.current_log(node)
        for rank in ranks:  # the node rank is the inventory index, inside the container as on the host
            assert "[rank %d] joined: node %d" % (rank, rank // 2) in log, log[-2000:]
        listing = on(node, "ps -eo uid=,args=").stdout
        job = [line.split(None, 1) for line in listing.splitlines() if "lightning_synthetic.py" in line]
        assert [uid for uid, _ in job if uid != "0"] == ["2000"] * 4, listing
        assert [args.split()[0] for uid, args in job if uid == "0"] == ["/usr/bin/" + runtime], listing
        assert containers(node, runtime, running_only=True) == ["torchrun-train"]
        listings[node] = listing
    # The store: open to the peer, closed to an outsider.
    assert harness.connect("node2", "198.18.0.11", 29500, seconds=2) == 0
    assert harness.connect("outsider", "198.18.0.11", 29500, seconds=2) != 0
    return listings


def another_image_is_named_and_nothing_starts(settings, runtime):
    """node2's image replaced by another of the same name (an empty one, what a node that pulled a moved
    tag has): launch names node2 and starts nothing; setup loads the archive's image again."""
    ok(playbook("stop", settings))
    swapped = on("node2", "{1} rmi --force {0} && d=$(mktemp -d) && tar -c -C $d . | {1} import - {0} >/dev/null"
                          .format(settings["torchrun_image"], runtime))
    assert swapped.returncode == 0, swapped.stderr
    before = on("node1", "systemctl show -p InvocationID --value %s" % UNIT).stdout
    out = " ".join(playbook("launch", settings).stdout.split())
    assert re.search(r"node2: its %s is image [0-9a-f]{12}.*, node1's is [0-9a-f]{12}.*: the ranks would run different code"
                     % re.escape(settings["torchrun_image"]), out), out[-3000:]
    assert on("node1", "systemctl show -p InvocationID --value %s" % UNIT).stdout == before  # node1 did not start either
    assert harness.recap_changed(ok(playbook("setup", settings)), "node2") > 0
    ok(playbook("launch", settings, {"job_wait": False}))
    assert harness.wait_for(lambda: re.search(EPOCH, harness.current_log("node1")), 240) is not None


def stacks_are_read_in_the_container(settings, folder):
    """Every rank's stack, read with the image's py-spy inside the job's container; returns the play's output."""
    out = " ".join(ok(playbook("stacks", settings, {"job_logs_dir": str(folder)})).split()).replace("''", "'")
    files = sorted(p.name for p in folder.glob("train-stack-rank*"))
    assert files == ["train-stack-rank%d-node%d.txt" % (r, r // 2 + 1) for r in range(4)], files
    for path in folder.glob("train-stack-rank*"):
        text = path.read_text()
        assert re.match(r"Process \d+: /opt/torchrun/venv/bin/python -u /opt/torchrun/jobs/train/lightning_synthetic\.py", text), text
        assert re.search(r'^Thread \d+ .*"MainThread"$', text, re.M) and "(lightning_synthetic.py:" in text, text
    assert re.search(r"rank 0 \(node1\): ", out) and re.search(r"rank 3 \(node2\): ", out), out[-3000:]
    return out


def stop_saves_a_checkpoint_and_leaves_no_container(settings, runtime):
    start = time.time()
    ok(playbook("stop", settings))
    assert "SIGTERM: saved %s/last.ckpt" % CHECKPOINTS in harness.current_log("node1")  # SIGTERM reached torchrun inside
    for node in ("node1", "node2"):
        assert on(node, "systemctl show -p ActiveState --value %s" % UNIT).stdout.strip() in ("inactive", "failed")
        assert containers(node, runtime) == []
    print("stop.yml with %s containers on 2 nodes: %.1f s" % (runtime, time.time() - start))
