# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which rank a hung job waits for: from every worker's Python stack (py-spy dump) or from PyTorch's
NCCL flight recorder dumps. Pure functions over text and bytes, for the hang_report filter."""

from __future__ import annotations

import io
import pickle  # nosec B403 - read through SafeUnpickler: plain containers and scalars only
import re

# torch.distributed calls a rank blocks in while its peers have not arrived.
COLLECTIVES = {
    "all_reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "broadcast", "barrier",
    "monitored_barrier", "all_to_all", "all_to_all_single", "gather", "scatter", "reduce", "send", "recv", "all_gather_object",
    "broadcast_object_list", "gather_object", "scatter_object_list", "batch_isend_irecv", "_store_based_barrier",
}
# py-spy dump: 'Thread 4242 (idle): "MainThread"', then one frame a line, innermost first.
THREAD = re.compile(r'^Thread \S+ .*"(?P<name>[^"]*)"\s*$')
FRAME = re.compile(r"^\s+(?P<func>\S+) \((?P<path>[^()]*?):(?P<line>\d+)\)\s*$")


def main_thread(stack):
    """The frames of a py-spy dump's main thread as (function, path, line), innermost first."""
    frames, inside = [], False
    for line in stack.splitlines():
        thread = THREAD.match(line)
        if thread:
            inside = thread.group("name") == "MainThread"
            continue
        frame = FRAME.match(line)
        if inside and frame:
            frames.append((frame.group("func"), frame.group("path"), int(frame.group("line"))))
    return frames


def _library(path):
    return "site-packages/" in path or "dist-packages/" in path or re.search(r"(^|/)(torch|lightning|pytorch_lightning)/", path) \
        or re.search(r"/lib/python3\.\d+/", path)


def where(stack):
    """Where one worker is: {"state": "collective"|"backward"|"code"|"unknown", "at": text}."""
    frames = main_thread(stack)
    for func, path, _line in frames:
        if "torch/distributed/" in path and func in COLLECTIVES:
            return {"state": "collective", "at": func}
        if "torch/autograd/" in path and func in ("_engine_run_backward", "run_backward", "backward"):
            return {"state": "backward", "at": "backward (DDP's gradient all_reduce)"}
    for func, path, line in frames:
        if not _library(path):
            return {"state": "code", "at": "%s:%d in %s" % (path.rsplit("/", 1)[-1], line, func)}
    if frames:
        func, path, line = frames[0]
        return {"state": "code", "at": "%s:%d in %s" % (path.rsplit("/", 1)[-1], line, func)}
    return {"state": "unknown", "at": "no stack (py-spy could not read the process)"}


def from_stacks(stacks):
    """The verdict over every rank's stack: {rank: (node, py-spy text)} -> lines, laggards first."""
    found = {rank: dict(where(text), node=node) for rank, (node, text) in stacks.items()}
    waiting = {rank: entry for rank, entry in found.items() if entry["state"] in ("collective", "backward")}
    others = {rank: entry for rank, entry in found.items() if rank not in waiting}
    lines = []
    if waiting and others:
        places = sorted({entry["at"] for entry in waiting.values()})
        for rank in sorted(others):
            lines.append("rank %s (%s) is the one the others wait for: at %s; ranks %s wait in %s"
                         % (rank, others[rank]["node"], others[rank]["at"], ", ".join(str(r) for r in sorted(waiting)), " / ".join(places)))
    elif waiting:
        lines.append("every rank waits in a collective (%s): a peer outside the job, the network or a deadlock of the script"
                     % " / ".join(sorted({entry["at"] for entry in waiting.values()})))
    else:
        lines.append("no rank waits in a collective: the job is busy, not hung")
    lines += ["rank %s (%s): %s" % (rank, entry["node"], entry["at"]) for rank, entry in sorted(found.items())]
    return lines


class SafeUnpickler(pickle.Unpickler):
    """A flight recorder dump is a pickle of dicts, lists, strings and numbers: nothing else is loaded."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError("a flight recorder dump holds no objects (%s.%s refused)" % (module, name))


def load_flight(data):
    """One rank's flight recorder dump (bytes) as plain data."""
    return SafeUnpickler(io.BytesIO(data)).load()


def from_flight(dumps):
    """The verdict over every rank's flight record: {rank: (node, dump)} -> lines.

    In each process group every collective has a sequence number; the rank whose last collective is
    behind the others' is the one they wait for, and the others' newest collective is what they wait in.
    """
    if len(dumps) < 2:
        return ["only rank %s left a flight record: nothing to compare it with" % ", ".join(str(rank) for rank in dumps)]
    lines = []
    groups = {}
    for rank, (node, dump) in dumps.items():
        for entry in dump.get("entries", []):
            if entry.get("collective_seq_id") is None:
                continue
            group = groups.setdefault(entry.get("pg_id", 0), {})
            seq = int(entry["collective_seq_id"])
            if seq >= group.get(rank, (-1, "", "", node))[0]:
                group[rank] = (seq, entry.get("profiling_name", "?"), entry.get("state", "?"), node)
    for key, group in sorted(groups.items(), key=lambda item: str(item[0])):
        newest = max(seq for seq, _n, _s, _node in group.values())
        behind = {rank: value for rank, value in group.items() if value[0] < newest}
        missing = sorted(set(dumps) - set(group))
        waited_in = sorted({name for seq, name, _s, _node in group.values() if seq == newest})
        for rank, (seq, name, state, node) in sorted(behind.items()):
            lines.append("process group %s: rank %s (%s) is the one the others wait for: its last collective is #%d %s (%s), "
                         "the others are in #%d %s" % (key, rank, node, seq, name, state, newest, " / ".join(waited_in)))
        for rank in missing:
            lines.append("process group %s: rank %s (%s) recorded no collective of it; the others are in #%d %s"
                         % (key, rank, dumps[rank][0], newest, " / ".join(waited_in)))
    return lines or ["the flight records agree: every rank is in the same collective (a peer outside the job, or the network)"]
