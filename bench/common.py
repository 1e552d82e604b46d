"""What the benchmarks share: the sandbox, timed playbook runs, commands on the nodes.

Every figure is wall time on this machine, taken in the same run as its baseline; only ratios are
compared with the targets. Standard library and PyYAML (the controller's Ansible has it), and
matplotlib for the plot (bench/report.py).
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sandbox"))
sys.path.insert(0, str(ROOT / "collections"))
import sandbox as sb  # noqa: E402  (the sandbox's own names: addresses, ssh options)
import harness  # noqa: E402  (the sandbox harness the tests share)
# How the job runs torchrun and which ports it has: the collection's own definitions.
from ansible_collections.onprem.torchrun.plugins.filter.torchrun_command import torchrun_command  # noqa: E402,F401
from ansible_collections.onprem.torchrun.plugins.module_utils import ports  # noqa: E402,F401


def role_vars(role: str, kind: str = "defaults") -> dict:
    """roles/<role>/<kind>/main.yml: the collection's own settings, so the baselines do what the roles do."""
    return yaml.safe_load((ROOT / "roles" / role / kind / "main.yml").read_text())


TORCHRUN = role_vars("torchrun")  # torchrun_venv, torchrun_user, torchrun_job, ...


class BenchError(Exception):
    """A benchmark could not measure what it set out to; the message says where."""


def log(msg: str) -> None:
    print("bench: " + msg, flush=True)


def sandbox(*args: str) -> None:
    try:
        harness.tool(*args)
    except harness.SandboxError as error:
        raise BenchError(str(error)) from error


def cluster(nodes: int, seed: bool = False) -> list[str]:
    """A fresh sandbox of `nodes` nodes (and the outsider); returns the node names."""
    try:
        return harness.fresh(nodes, seed)
    except harness.SandboxError as error:
        raise BenchError(str(error)) from error


def machine_cpu() -> float:
    """CPU seconds this machine has spent busy since boot (every process: controller and nodes)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# CPU seconds of the last playbook(): the controller's (ansible-playbook, its forks and ssh) and
# the rest of the machine's, which is the nodes' (and the package proxy's) work.
LAST_CPU = {"controller": 0.0, "nodes": 0.0}


def playbook(name: str, *args: str, profile: bool = False) -> tuple[float, str]:
    """Run playbooks/<name>.yml on the sandbox; return (seconds, output). Raises when it fails."""
    env = dict(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="8") if profile else {}
    start, machine, controller = time.perf_counter(), machine_cpu(), children_cpu()
    proc = harness.playbook(name, *args, timeout=7200, env=env)
    elapsed = time.perf_counter() - start
    LAST_CPU["controller"] = children_cpu() - controller
    LAST_CPU["nodes"] = max(0.0, machine_cpu() - machine - LAST_CPU["controller"])
    if proc.returncode != 0:
        raise BenchError("playbooks/%s.yml %s failed (rc %d):\n%s" % (name, " ".join(args), proc.returncode, (proc.stdout + proc.stderr)[-4000:]))
    return elapsed, proc.stdout


def changed_hosts(output: str) -> dict[str, int]:
    """changed= of every host in a play recap."""
    return {host: int(count) for host, count in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)}


def slowest_tasks(output: str, count: int = 5) -> list[list]:
    """The slowest tasks that the profile_tasks callback listed: [[task, seconds], ...]."""
    found = re.findall(r"^(.+?) -+ (\d+\.\d+)s$", output, re.M)
    return [[name.strip(), float(seconds)] for name, seconds in found[:count]]


def ssh(node: str, command: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    proc = harness.on(node, command, timeout=timeout)
    if check and proc.returncode != 0:
        raise BenchError("%s: `%s` failed (rc %d): %s" % (node, command[:120], proc.returncode,
                                                          (proc.stderr + proc.stdout).strip()[-1500:]))
    return proc


def on_all(nodes: list[str], command, timeout: float = 900) -> list[subprocess.CompletedProcess]:
    """Run command (a string, or a function of the node's index) on every node at once."""
    def one(index: int) -> subprocess.CompletedProcess:
        text = command(index) if callable(command) else command
        return ssh(nodes[index], text, timeout=timeout)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        return list(pool.map(one, range(len(nodes))))


def timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def put(node: str, path: str, text: str) -> None:
    """Write a file on a node (over ssh's standard input)."""
    proc = subprocess.run(sb.ssh_command(node) + ["cat > %s" % shlex.quote(path)], input=text, capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise BenchError("%s: could not write %s: %s" % (node, path, proc.stderr.strip()))


def median(values: list[float]) -> float:
    return statistics.median(values)


def result(key: str, title: str, ours: float, baseline: float, target: float, unit: str = "s", **details) -> dict:
    """One row of the results: ours against its baseline, as a ratio, with the target ratio.

    For times (unit "s") lower is better and the target is the largest ratio allowed; for
    bandwidths (unit "GB/s") the target is the largest relative shortfall allowed (0.1 = 10 %).
    """
    ratio = ours / baseline if baseline else float("inf")
    met = ratio <= target if unit == "s" else abs(1 - ratio) <= target
    return {"key": key, "title": title, "ours": round(ours, 4), "baseline": round(baseline, 4), "unit": unit,
            "ratio": round(ratio, 3), "target": target, "met": met, "details": details}
