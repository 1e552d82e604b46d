# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts of the torchrun contract that modules, filters and the validator share."""

from __future__ import annotations

import re

# What torchrun sets for every worker: nothing may pre-set them (a stale NODE_RANK or MASTER_* hangs
# the job). The unit and the health check unset them (filter torchrun_command), node_probe looks
# for them on the node and preflight refuses them there and in torchrun_env.
RANK_VARIABLES = ("NODE_RANK", "RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

# How each worker's line reaches the journal when the job's unit tees its workers' output
# (torchrun --tee with TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE): "[rank<global rank>]: <line>".
# The filter torchrun_command sets the template; the filter rank_logs splits the journal by it.
# An image reference as podman and docker take it: [registry[:port]/]path[:tag][@sha256:digest] in
# lowercase, no spaces and nothing that reads as an option (torchrun_image; the validator and the
# container_command filter).
IMAGE_REFERENCE = re.compile(r"\A[a-z0-9][a-z0-9._-]*(?::[0-9]+)?(?:/[a-z0-9][a-z0-9._-]*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                             r"(?:@sha256:[0-9a-f]{64})?\Z")
# The runtimes torchrun_runtime names besides the host's own venv, and their binary.
CONTAINER_RUNTIMES = {"podman": "/usr/bin/podman", "docker": "/usr/bin/docker"}
# The node's own Python (what Ansible runs there): with docker, the unit's environment reaches the
# container by name through it (filter container_command), as podman's --env-host passes it.
HOST_PYTHON = "/usr/bin/python3"


def container_name(job, purpose=""):
    """The name of a job's container (torchrun_runtime): its unit's, without .service; another run
    of the image for the job (its health check) adds what it is for."""
    return "torchrun-%s" % job + ("-" + purpose if purpose else "")


def container_ids(spec):
    """The uid and gid a run of the image gets (--user): both numbers, never root's. ValueError says what is wrong."""
    try:
        uid, gid = int(spec["uid"]), int(spec["gid"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError("uid and gid must both be numbers (%s)" % err) from err
    if uid <= 0 or gid <= 0:
        raise ValueError("a run in the image is never root's (uid %d, gid %d)" % (uid, gid))
    return uid, gid


RANK_LINE_TEMPLATE = "[rank${rank}]: "
RANK_LINE_PATTERN = r"\[rank(\d+)\]: "
_RANK_MARKER = re.compile(RANK_LINE_PATTERN)


def rank_segments(message: str) -> list[tuple[int, str]]:
    """A teed journal message as (global rank, text) pieces; [] when no marker opens it.

    torchrun's tee reads each worker's output file line by line and prints what it read with the
    marker in front; a line the worker had half written when the tee reached the end of the file is
    printed in two pieces, each with its marker: "[rank0]: par[rank0]: tial". Each marker after the
    first starts a piece of its own rank (another rank's piece too, when two writes met)."""
    if not _RANK_MARKER.match(message):
        return []
    parts = _RANK_MARKER.split(message)  # "", rank, text, rank, text ...
    pieces: list[tuple[int, str]] = []
    for rank, text in zip(parts[1::2], parts[2::2]):
        if pieces and pieces[-1][0] == int(rank):
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + text)
        else:
            pieces.append((int(rank), text))
    # A piece that is only its marker (a worker's blank line stays one).
    return [piece for piece in pieces if piece[1]] or pieces[:1]


# A job whose peer is gone must end failed, not restart forever: systemd stops restarting a unit
# that started launcher_start_limit_burst + 1 times within StartLimitIntervalSec, and each start
# waits the whole rendezvous timeout, then launcher_restart_sec, plus torchrun's own start-up.
# The launcher's unit takes its window from start_limit_window (filter start_limit_window); the
# validator refuses an explicit window not longer than start_span.
START_ALLOWANCE = 30


def start_span(burst: int, join_timeout: int, restart_sec: int) -> int:
    """The seconds that ``burst`` starts each waiting the whole rendezvous, with the restart delay, take."""
    return burst * (join_timeout + restart_sec)


def start_limit_window(burst: int, join_timeout: int, restart_sec: int, explicit: int = 0) -> int:
    """StartLimitIntervalSec: ``explicit`` when set, else long enough for burst + 1 such starts and their start-up."""
    return explicit if explicit > 0 else (burst + 1) * (join_timeout + restart_sec + START_ALLOWANCE)


def processes_over_gpus(processes: int, gpus: int) -> bool:
    """More of the job's processes on a node than GPUs for them (0: one process per GPU, never over).
    Preflight checks it on the PCI bus's GPUs, the nvidia role on the driver's, the GPU health gate
    on nvidia-smi -q -x's."""
    return processes > 0 and processes > gpus
