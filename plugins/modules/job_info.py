#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the state of a torchrun job's systemd unit on this node."""

from __future__ import annotations

DOCUMENTATION = r"""
module: job_info
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: State, exit status, workers and last log lines of a torchrun job's unit
description:
  - Reads C(torchrun-<job>.service) with C(systemctl show), counts the worker processes that
    the torchrun agent has started (with the static rendezvous they start only once every
    node has joined), and returns the last journal lines of the unit's latest run.
  - Reads only; changes nothing.
options:
  job:
    description: The job name (the unit is C(torchrun-<job>.service)).
    type: str
    required: true
  log_lines:
    description: How many journal lines of the latest run to return.
    type: int
    default: 5
  wait_for_workers:
    description:
      - Up to this many seconds, look again every 0.2 s on the node until the agent has workers
        or the run is over, then report. A launch learns that every rank has joined within
        0.2 s of it, without a round trip per look. V(0) reads once.
    type: float
    default: 0
  wait_for_end:
    description:
      - Up to this many seconds, look again every 0.2 s on the node until the run is over (the unit
        no longer active or activating), then report. A launch that waits for the job learns that it
        ended within 0.2 s, not at its next poll. Not with O(wait_for_workers). V(0) reads once.
    type: float
    default: 0
  journal_after:
    description:
      - Also return the job's journal lines written after this cursor (RV(journal_lines), RV(journal_cursor)),
        as a follower reads them again and again. V("") starts with the last O(log_lines) lines. Unset
        reads no such lines.
    type: str
    version_added: 0.2.0
extends_documentation_fragment:
  - onprem.torchrun.cluster.read_only
"""

EXAMPLES = r"""
- name: Read the job's state
  onprem.torchrun.job_info:
    job: train
  register: job
"""

RETURN = r"""
journal_lines:
  description: With O(journal_after), the job's journal lines after that cursor (its workers' and agent's output).
  returned: when O(journal_after) is set
  type: list
  elements: str
journal_cursor:
  description: With O(journal_after), the cursor to pass next time (unchanged when there was nothing new).
  returned: when O(journal_after) is set
  type: str
unit:
  description: The unit's name.
  returned: always
  type: str
  sample: torchrun-train.service
exists:
  description: Whether the unit is installed.
  returned: always
  type: bool
state:
  description: The unit's ActiveState (C(active), C(inactive), C(failed), ...).
  returned: always
  type: str
sub_state:
  description: The unit's SubState.
  returned: always
  type: str
result:
  description:
    - systemd's Result of the latest run (C(success), C(exit-code), C(signal), ...), or
      C(start-limit-hit) when systemd refused to start it again (read from the unit's journal too).
  returned: always
  type: str
exit_status:
  description: Exit status of the torchrun agent in the latest run (0 while it runs).
  returned: always
  type: int
restarts:
  description: How often systemd restarted the unit (NRestarts).
  returned: always
  type: int
main_pid:
  description: PID of the torchrun agent, 0 when it is not running.
  returned: always
  type: int
workers:
  description: Worker processes the agent runs now.
  returned: always
  type: int
worker_ranks:
  description: Each worker's PID and its global rank (C(RANK) of its environment; empty when unreadable).
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4242, "rank": "0"}, {"pid": 4243, "rank": "1"}]
started:
  description: When the unit last became active (ActiveEnterTimestamp), empty if never.
  returned: always
  type: str
finished:
  description: Whether the latest run is over (not active, activating or deactivating).
  returned: always
  type: bool
stale:
  description:
    - Whether the run that is going on started before its unit or environment files last
      changed (setup.yml installed new settings while it ran), so a launch restarts it.
  returned: always
  type: bool
log:
  description: The last journal lines of the latest run.
  returned: always
  type: list
  elements: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import CONTAINER_RUNTIMES, container_name

PROPERTIES = ("LoadState", "ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts", "MainPID",
              "InvocationID", "ActiveEnterTimestamp", "ActiveEnterTimestampMonotonic", "FragmentPath")
RUNNING = ("active", "activating", "deactivating", "reloading")


def show(module, unit):
    cmd = ["systemctl", "show", unit, "--property=" + ",".join(PROPERTIES)]
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        module.fail_json(msg="systemctl show %s failed: %s" % (unit, err.strip()), rc=rc)
    props = {}
    for line in out.splitlines():
        key, _sep, value = line.partition("=")
        props[key] = value
    return props


def children(pid):
    """The PIDs of the direct children of ``pid`` (the agent's workers)."""
    if pid <= 0:
        return []
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as handle:
                        if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                            found.append(int(entry))
                except (OSError, IndexError, ValueError):
                    continue
        return sorted(found)


def agent(module, pid, job):
    """The torchrun agent: the unit's main process, or - where that is a container runtime
    (torchrun_runtime) - torchrun inside the job's container, the one child of its init (0 while
    the container is not up). Its workers are the agent's children either way."""
    try:
        runtime = os.readlink("/proc/%d/exe" % pid) if pid > 0 else ""
    except OSError:
        return pid
    if runtime not in CONTAINER_RUNTIMES.values():
        return pid
    rc, out, _err = module.run_command([runtime, "inspect", "--format", "{{.State.Pid}}", container_name(job)])
    init = to_int(out.strip()) if rc == 0 else 0
    if init <= 0:
        return 0
    below = children(init)
    return below[0] if len(below) == 1 else init


def rank_of(pid, proc="/proc"):
    """A worker's global rank, from the RANK torchrun put in its environment ('' when unreadable)."""
    try:
        with open("%s/%d/environ" % (proc, pid), "rb") as handle:
            for item in handle.read().split(b"\0"):
                if item.startswith(b"RANK="):
                    return item[5:].decode(errors="replace")
    except OSError:
        pass
    return ""


def journal(module, unit, invocation, lines):
    if lines <= 0:
        return []
    # The job's own output in its latest run, without systemd's messages about the unit.
    match = ["_SYSTEMD_UNIT=" + unit] + (["_SYSTEMD_INVOCATION_ID=" + invocation] if invocation else [])
    cmd = ["journalctl", "--no-pager", "--output=cat", "--lines=%d" % lines] + match
    rc, out, _err = module.run_command(cmd)
    return out.splitlines()[-lines:] if rc == 0 else []


def journal_after(module, unit, cursor, lines):
    """The unit's lines after ``cursor`` (from the last ``lines`` when it is empty) and the new cursor."""
    cmd = ["journalctl", "--no-pager", "--output=cat", "--show-cursor", "_SYSTEMD_UNIT=" + unit]
    cmd += ["--after-cursor=" + cursor] if cursor else ["--lines=%d" % max(lines, 0)]
    rc, out, _err = module.run_command(cmd)
    if rc != 0:
        return [], cursor
    found = out.splitlines()
    if found and found[-1].startswith("-- cursor: "):
        return found[:-1], found[-1][len("-- cursor: "):]
    return [line for line in found if line != "-- No entries --"], cursor


def stale(props, job, folder="/etc/torchrun"):
    """Whether the running unit started before its unit file or environment files last changed."""
    if props.get("ActiveState") not in RUNNING:
        return False
    started_mono = to_int(props.get("ActiveEnterTimestampMonotonic")) / 1e6
    if started_mono <= 0:
        return False
    started = time.time() - (time.clock_gettime(time.CLOCK_MONOTONIC) - started_mono)
    files = [props.get("FragmentPath") or ""] + ["%s/%s%s" % (folder, job, suffix) for suffix in (".env", ".secret.env")]
    for path in files:
        try:
            if path and os.stat(path).st_mtime > started:
                return True
        except OSError:
            continue
    return False


def start_limit_hit(module, unit):
    """Whether systemd refused the unit's last start ("Start request repeated too quickly"); some
    systemd versions leave Result at the last run's exit-code then."""
    rc, out, _err = module.run_command(["journalctl", "--no-pager", "--output=cat", "--lines=5", "--unit=" + unit])
    return rc == 0 and "Start request repeated too quickly" in out


def to_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def done_waiting(state, sub_state, workers, now, deadline, until_end):
    """Whether to report now: the run is over, the time is up, or - waiting for workers, not for
    the end - the agent has workers or waits for an automatic restart (it has none to wait for)."""
    if state not in RUNNING or now >= deadline:
        return True
    return not until_end and (bool(workers) or sub_state == "auto-restart")


def main():
    module = AnsibleModule(
        argument_spec=dict(job=dict(type="str", required=True), log_lines=dict(type="int", default=5),
                           wait_for_workers=dict(type="float", default=0), wait_for_end=dict(type="float", default=0), journal_after=dict(type="str")),
        mutually_exclusive=[["wait_for_workers", "wait_for_end"]],
        supports_check_mode=True,
    )
    unit = "torchrun-%s.service" % module.params["job"]
    until_end = module.params["wait_for_end"] > 0
    deadline = time.monotonic() + max(module.params["wait_for_workers"], module.params["wait_for_end"])
    main_pid, agent_pid = None, 0
    while True:
        props = show(module, unit)
        pid = to_int(props.get("MainPID"))
        state = props.get("ActiveState", "")
        if pid != main_pid or agent_pid <= 0:  # found again only for a new run, or a container not up yet
            main_pid, agent_pid = pid, agent(module, pid, module.params["job"])
        workers = children(agent_pid)
        if done_waiting(state, props.get("SubState", ""), workers, time.monotonic(), deadline, until_end):
            break
        time.sleep(0.2)
    follow = {}
    if module.params["journal_after"] is not None:
        lines, cursor = journal_after(module, unit, module.params["journal_after"], module.params["log_lines"])
        follow = {"journal_lines": lines, "journal_cursor": cursor}
    module.exit_json(
        changed=False,
        unit=unit,
        exists=props.get("LoadState") == "loaded",
        state=state,
        sub_state=props.get("SubState", ""),
        result="start-limit-hit" if state == "failed" and start_limit_hit(module, unit) else props.get("Result", ""),
        exit_status=to_int(props.get("ExecMainStatus")),
        restarts=to_int(props.get("NRestarts")),
        main_pid=pid,
        workers=len(workers),
        worker_ranks=[{"pid": worker, "rank": rank_of(worker)} for worker in workers],
        started=props.get("ActiveEnterTimestamp", ""),
        finished=state not in RUNNING,
        stale=stale(props, module.params["job"]),
        log=journal(module, unit, props.get("InvocationID", ""), module.params["log_lines"]),
        **follow,
    )


if __name__ == "__main__":
    main()
