# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for a job on every node: what each node's wait leaves for the others, when the wait is over, and
the one progress line the cluster gets (the action plugin onprem.torchrun.job_wait)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time

from ansible_collections.onprem.torchrun.plugins.module_utils.contract import rank_segments

# What a node's wait keeps of job_info's answer for the others to read.
KEPT = ("state", "sub_state", "result", "exit_status", "restarts", "finished", "started", "workers", "log")


def safe(name: str) -> str:
    """A file name for a token or a host (inventory names are checked by the validator; this is belt and braces)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:128] or "_"


def write(folder: str, host: str, info: dict) -> None:
    path = os.path.join(folder, safe(host) + ".json")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({key: info.get(key) for key in KEPT}, handle)
    os.replace(path + ".tmp", path)


def read(folder: str, hosts: list[str]) -> dict[str, dict | None]:
    found: dict[str, dict | None] = {}
    for host in hosts:
        try:
            with open(os.path.join(folder, safe(host) + ".json"), encoding="utf-8") as handle:
                found[host] = json.load(handle)
        except (OSError, ValueError):
            found[host] = None
    return found


def read_all(folder: str, hosts: list[str], nodes: dict[str, dict | None], bound: float) -> dict[str, dict | None]:
    """``nodes`` (read just now), read again until every host has answered or ``bound`` seconds passed: a peer
    whose wait is in its last round too (a wait of one round: every node's first answer comes at its end)."""
    deadline = time.monotonic() + bound
    while any(nodes.get(host) is None for host in hosts) and time.monotonic() < deadline:
        time.sleep(0.1)
        nodes = read(folder, hosts)
    return nodes


def finish(folder: str, host: str, hosts: list[str]) -> bool:
    """This node's wait is over: it says so in the folder, and the last node to finish removes the folder
    (the nodes' answers carry log lines; nothing of a wait stays on the controller). Returns whether the
    folder is gone. A node that never finishes (unreachable) leaves it, root's alone (0700)."""
    open(os.path.join(folder, safe(host) + ".done"), "w", encoding="utf-8").close()
    if all(os.path.exists(os.path.join(folder, safe(other) + ".done")) for other in hosts):
        shutil.rmtree(folder, ignore_errors=True)
        return True
    return False


def failed(info: dict | None) -> bool:
    """A node whose latest run ended otherwise than with success and exit status 0."""
    return bool(info and info.get("finished") and (info.get("result") != "success" or info.get("exit_status") not in (0, None)))


def joined(info: dict | None) -> bool:
    """A node whose agent has started its workers (the static rendezvous starts them once every node
    joined), or whose run is over or waits for an automatic restart: nothing more to wait for there."""
    return bool(info and (int(info.get("workers") or 0) > 0 or info.get("finished") or info.get("sub_state") == "auto-restart"))


def verdict(nodes: dict[str, dict | None], hosts: list[str], me: str, left: float, until: str = "ended") -> dict:
    """Whether this node's wait is over, and why. Until ``ended``: its own run ended, another node's
    failed (the job cannot go on without it), or the time is up with the job still running (never a
    failure). Until ``joined``: its workers run (or its run is over), or the time is up."""
    mine = nodes.get(me) or {}
    if until == "joined":
        return {"done": joined(mine) or left <= 0, "ended": bool(mine.get("finished")), "still_running": not mine.get("finished"),
                "failed_nodes": []}
    others_failed = [host for host in hosts if host != me and failed(nodes.get(host))]
    if mine.get("finished"):
        return {"done": True, "ended": True, "still_running": False, "failed_nodes": others_failed}
    if others_failed:
        return {"done": True, "ended": False, "still_running": True, "failed_nodes": others_failed}
    if left <= 0:
        return {"done": True, "ended": False, "still_running": True, "failed_nodes": []}
    return {"done": False, "ended": False, "still_running": True, "failed_nodes": []}


def progress_line(job: str, nodes: dict[str, dict | None], hosts: list[str], master: str, until: str = "ended") -> str:
    """One line for the whole cluster: nodes running (joined), restarts, failures, and rank 0's node's last line."""
    if until == "joined":
        ready = sum(1 for host in hosts if joined(nodes.get(host)))
        return "job %s: waiting until every rank has joined: %d of %d node(s) have their workers" % (job, ready, len(hosts))
    running = sum(1 for host in hosts if (nodes.get(host) or {}).get("state") in ("active", "activating"))
    restarts = sum(int((nodes.get(host) or {}).get("restarts") or 0) for host in hosts)
    down = [host for host in hosts if failed(nodes.get(host))]
    log = [line for line in (nodes.get(master) or {}).get("log") or [] if line.strip()]
    text = "job %s: %d of %d node(s) running, %d restart(s)" % (job, running, len(hosts), restarts)
    if down:
        text += ", failed on %s" % ", ".join(down)
    if log:
        text += "; %s: %s" % (master, log[-1].strip()[:160])
    return text


def follow_lines(host: str, node_rank: int, lines: list[str]) -> list[str]:
    """A node's new journal lines as a follower shows them: each marked with the node, its node rank and the
    global rank that wrote it (the unit's rank marker taken out), or "agent" for torchrun's own lines."""
    shown = []
    for line in lines:
        for who, text in [("rank %d" % rank, text) for rank, text in rank_segments(line)] or [("agent", line)]:
            shown.append("%s (node %d) %s | %s" % (host, node_rank, who, text))
    return shown
