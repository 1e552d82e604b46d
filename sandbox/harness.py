"""The sandbox harness the test suites and bench share: a fresh cluster, commands on its nodes,
playbooks against it, and the cluster down again.

    import harness
    with harness.cluster(2):                 # down, up --nodes 2 ... down (also on failure)
        harness.on("node1", "systemctl is-active torchrun-train")
        harness.playbook("setup", "-e", "...")

tests/integration/conftest.py builds its pytest fixtures on it; bench/common.py and the molecule
checks call the same functions. Needs root, like sandbox.py.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import sandbox

ROOT = Path(__file__).resolve().parents[1]
TOOL = [sys.executable, str(Path(sandbox.__file__).resolve())]
BIN = Path(sys.executable).parent


class SandboxError(RuntimeError):
    """sandbox.py failed; the message carries the end of its output."""


def tool(*args: str, check: bool = True, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run sandbox.py with ``args``; raise SandboxError when it fails and ``check`` is set."""
    proc = subprocess.run(TOOL + list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise SandboxError("sandbox %s failed: %s" % (" ".join(args), (proc.stderr or proc.stdout).strip()[-3000:]))
    return proc


def down() -> None:
    """Take the sandbox down; returns once nothing of it is left (sandbox.py down waits for its processes)."""
    tool("down")


def fresh(nodes: int, seed: bool = False, nvidia_repo: bool = False) -> list[str]:
    """A new sandbox of ``nodes`` nodes and the outsider, from whatever ran before; the node names.
    The wheelhouse the nodes install from is filled first (a no-op once current)."""
    down()
    tool("wheelhouse", "-r", str(ROOT / "sandbox" / "wheelhouse.txt"))
    tool("up", "--nodes", str(nodes), *(["--seed"] if seed else []), *(["--nvidia-repo"] if nvidia_repo else []))
    return sandbox.node_names(nodes)


def keep_as_seed(node: str) -> None:
    """Keep what ``node`` (set up, idle) changed on the image as the seed layer later clusters boot on."""
    tool("seed", node)


def seed_ready() -> bool:
    """Whether a seed layer for the current image exists (``keep_as_seed`` made one since the image changed)."""
    return sandbox.seed_current(sandbox.apt_sources())


@contextlib.contextmanager
def cluster(nodes: int, seed: bool = False, nvidia_repo: bool = False):
    """``fresh(nodes)`` for the block, down afterwards even when the block fails."""
    try:
        yield fresh(nodes, seed, nvidia_repo)
    finally:
        tool("down", check=False)


def on(node: str, command: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """A shell command on a node over the sandbox's SSH (never raises on a non-zero exit)."""
    return subprocess.run(sandbox.ssh_command(node) + [command], capture_output=True, text=True, timeout=timeout, check=False)


def as_job(node: str, command: str, user: str = "torchrun-train") -> subprocess.CompletedProcess:
    """A command as the job's user: the shared storage squashes root (sandbox/squashfs.py), as NFS does."""
    return on(node, "runuser -u %s -- sh -c %s" % (user, shlex.quote(command)))


def ok(proc: subprocess.CompletedProcess, units: tuple[str, ...] = ("torchrun-train.service",),
       nodes: tuple[str, ...] = ("node1", "node2")) -> str:
    """A playbook's output, which must have passed; otherwise its end and each node's journal of ``units`` fail the test."""
    if proc.returncode != 0:
        journals = "".join("\n--- %s:\n%s" % (node, on(node, "journalctl %s -n 30 --no-pager" % " ".join("-u " + u for u in units)).stdout)
                           for node in nodes)
        raise AssertionError((proc.stdout + proc.stderr)[-4000:] + journals)
    return proc.stdout


def wait_for(predicate, timeout: float, step: float = 0.25) -> float | None:
    """Seconds until ``predicate()`` held, looking every ``step`` s; None when ``timeout`` passed first."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    return None


def current_log(node: str, unit: str = "torchrun-train.service") -> str:
    """A unit's output in its latest run only (a resumed run counts epochs on from the checkpoint)."""
    return on(node, "journalctl -o cat _SYSTEMD_UNIT=%s _SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value %s)"
              % (unit, unit)).stdout


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def recap_changed(out: str, node: str = "node1") -> int:
    """How many changes a playbook's recap counts for ``node`` (colour codes, where a caller forces them, left out)."""
    return int(re.search(r"^%s\s+: ok=\d+\s+changed=(\d+)" % re.escape(node), ANSI.sub("", out), re.M).group(1))


def playbook_command(name: str, *args: str, env: dict | None = None) -> tuple[list[str], dict]:
    """The command line and environment of ansible-playbook playbooks/<name>.yml (or a path ending in .yml)
    against the sandbox inventory, from the checkout."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH="%s:%s" % (BIN, os.environ["PATH"]), **(env or {}))
    cmd = [str(BIN / "ansible-playbook"), name if name.endswith(".yml") else "playbooks/%s.yml" % name, "-i", "inventories/sandbox"]
    return cmd + list(args), env


def playbook(name: str, *args: str, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a playbook (playbook_command) to its end."""
    cmd, env = playbook_command(name, *args, env=env)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def playbook_started(name: str, *args: str) -> subprocess.Popen:
    """Start a playbook (playbook_command) and return at once; its output (stdout and stderr) is read line by line."""
    cmd, env = playbook_command(name, *args, env={"PYTHONUNBUFFERED": "1"})
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def connect(source: str, address: str, port: int, seconds: int = 4) -> int:
    """Open a TCP connection from ``source`` (a node or the outsider) to ``address:port``.

    0: connected; 124: timed out (the SYN was dropped); anything else: refused, reset or no route.
    """
    return on(source, "timeout %d bash -c 'exec 3<>/dev/tcp/%s/%d'" % (seconds, address, port)).returncode


# A health check small enough for the sandbox's shared cores (the settings of roles/healthcheck).
HEALTHCHECK_SMALL = {"healthcheck_max_bytes": 4 << 20, "healthcheck_pair_bytes": 4 << 20, "healthcheck_iters": 5, "healthcheck_warmup": 1}


def healthy(out: str, report: Path, nodes: list[str], job: str = "train") -> None:
    """A health check that passed: its line names every process, its report every node, both sizes with a
    bandwidth and every pair of nodes; nothing of it is left in the job's folder."""
    assert "health check: PASS (gloo, %d processes on %d nodes" % (2 * len(nodes), len(nodes)) in out, out[-3000:]
    result = json.loads(report.read_text())
    assert result["status"] == "pass" and result["report"]["nodes"] == nodes, result
    assert [s["bytes"] for s in result["report"]["sizes"]] == [1 << 20, 4 << 20], result
    assert all(s["busbw_gbps"] > 0 for s in result["report"]["sizes"]), result
    assert [p["nodes"] for p in result["report"]["pairs"]] == [list(pair) for pair in itertools.combinations(nodes, 2)], result
    assert on(nodes[0], "ls /var/lib/torchrun/%s/healthcheck" % job).stdout == ""  # the report is not left behind
