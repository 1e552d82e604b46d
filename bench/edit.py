"""Edit to train: one file of the example project edited, then until every rank has joined.

Ours: `train.yml -e job_wait=false` with the project (examples/project, copied), which skips each
setup role whose inputs are unchanged (torchrun_setup_changed_only), copies the changed file and
relaunches. The baseline is the manual loop automated: rsync of the project to every node (with
checksums, as ours), then one ssh per node, all at once, starting the installed unit's torchrun
command line (relaunch.bare_start) until that node's agent has workers. Both edit the same file
before each run; between runs both are stopped and nothing is left running.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import relaunch
from common import ROOT, TORCHRUN, BenchError, cluster, log, median, on_all, playbook, result, slowest_tasks, sb

COPY = "/opt/torchrun/jobs/%s/project" % TORCHRUN["torchrun_job"]  # the launcher's copy of the project on a node


def rsync(node: str, project: Path) -> None:
    """The project to the node's copy, as a user would sync it by hand (contents compared)."""
    ssh = sb.ssh_command(node)
    proc = subprocess.run(["rsync", "-r", "--checksum", "--delete", "--exclude=data", "-e", shlex.join(ssh[:-1]),
                           str(project) + "/", "%s:%s/" % (ssh[-1], COPY)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError("rsync to %s failed: %s" % (node, proc.stderr[-1000:]))


def run(repeat: int) -> list[dict]:
    log("edit_to_train: a converged 2-node cluster with the example project")
    nodes = cluster(2, seed=True)
    project = Path(tempfile.mkdtemp(prefix="bench-project-")) / "project"
    shutil.copytree(ROOT / "examples" / "project", project, ignore=shutil.ignore_patterns("__pycache__"))
    job = json.dumps({"torchrun_project_dir": str(project), "torchrun_module": "trainer.main", "torchrun_script_args": ["100000"],
                      "job_wait": False})
    edits = iter(range(1, 1000))

    def edit() -> None:
        with open(project / "trainer" / "model.py", "a") as model:
            model.write("# edit %d\n" % next(edits))

    try:
        playbook("train", "-e", job)  # the first run sets every role up and keeps its digests
        playbook("stop", "-e", job)
        commands = [relaunch.unit_command(node) for node in nodes]
        profiles: list[str] = []

        def ours() -> float:
            edit()
            seconds, out = playbook("train", "-e", job, profile=True)
            profiles.append(out)
            playbook("stop", "-e", job)
            return seconds

        def bare() -> float:
            edit()
            start = time.perf_counter()
            on_all(nodes, lambda i: (rsync(nodes[i], project), relaunch.bare_start(*commands[i]))[1], timeout=600)
            seconds = time.perf_counter() - start
            on_all(nodes, relaunch.BARE_STOP)
            return seconds

        ours()  # warm-up of both
        bare()
        our_times, bare_times = [], []
        for _ in range(repeat):
            our_times.append(ours())
            bare_times.append(bare())
    finally:
        shutil.rmtree(project.parent, ignore_errors=True)
    log("edit_to_train: ours %s, bare %s" % (our_times, bare_times))
    return [result("edit_to_train", "Edit one project file, then train until every rank joined: train.yml vs rsync + parallel ssh + torchrun",
                   median(our_times), median(bare_times), 3.0, ours_runs=[round(t, 2) for t in our_times],
                   baseline_runs=[round(t, 2) for t in bare_times], slowest_tasks=slowest_tasks(profiles[-1]))]
