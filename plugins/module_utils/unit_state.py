# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A torchrun job's systemd unit on this node: its state, its agent and workers, its journal.

One reader for the modules that look at a job's unit: job_info (and job_wait through it), job_start
(the launch's start and its report) and node_probe (the state before a launch). ``module`` is the
calling AnsibleModule (its run_command).
"""

from __future__ import annotations

import os
import time

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


def pid_inside(pid, proc="/proc"):
    """A process's PID in its own PID namespace (a container's, where the job runs in its image): the
    last of NSpid in its status; the host's PID where it has no namespace of its own or is gone."""
    try:
        with open("%s/%d/status" % (proc, pid)) as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return pid


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


def unit_name(job):
    """The job's unit."""
    return "torchrun-%s.service" % job


def before(module, job):
    """The unit's state before a launch: whether it is installed and runs, and whether with older settings."""
    props = show(module, unit_name(job))
    return {"exists": props.get("LoadState") == "loaded", "state": props.get("ActiveState", ""),
            "sub_state": props.get("SubState", ""), "stale": stale(props, job)}


def report(module, job, log_lines=5, wait_for_workers=0.0, wait_for_end=0.0, journal_cursor=None):
    """The unit's state, exit status, workers and last journal lines (job_info's result), read again
    on the node for up to ``wait_for_workers`` (every 0.1 s, until the agent has workers or the run is
    over) or ``wait_for_end`` seconds (every 0.2 s, until the run is over)."""
    unit = unit_name(job)
    until_end = wait_for_end > 0
    deadline = time.monotonic() + max(wait_for_workers, wait_for_end)
    main_pid, agent_pid, props = None, 0, None
    while True:
        # While the agent found lives and the run is neither over nor due to report, only /proc is read:
        # asking systemd every look costs the CPU the starting torchrun needs (nodes share cores).
        fresh = props is None or until_end or agent_pid <= 0 or not os.path.exists("/proc/%d" % agent_pid)
        if fresh:
            props = show(module, unit)
        pid = to_int(props.get("MainPID"))
        state = props.get("ActiveState", "")
        if pid != main_pid or agent_pid <= 0:  # found again only for a new run, or a container not up yet
            main_pid, agent_pid = pid, agent(module, pid, job)
        workers = children(agent_pid)
        if done_waiting(state, props.get("SubState", ""), workers, time.monotonic(), deadline, until_end):
            break
        time.sleep(0.2 if until_end else 0.1)  # a start is waited for closely; a run's end for long
    if not fresh:
        props = show(module, unit)  # the unit as it is now, for the report
        state = props.get("ActiveState", "")
    follow = {}
    if journal_cursor is not None:
        lines, cursor = journal_after(module, unit, journal_cursor, log_lines)
        follow = {"journal_lines": lines, "journal_cursor": cursor}
    return dict(
        unit=unit,
        exists=props.get("LoadState") == "loaded",
        state=state,
        sub_state=props.get("SubState", ""),
        result="start-limit-hit" if state == "failed" and start_limit_hit(module, unit) else props.get("Result", ""),
        exit_status=to_int(props.get("ExecMainStatus")),
        restarts=to_int(props.get("NRestarts")),
        main_pid=pid,
        workers=len(workers),
        worker_ranks=[{"pid": worker, "rank": rank_of(worker), "pid_inside": pid_inside(worker)} for worker in workers],
        started=props.get("ActiveEnterTimestamp", ""),
        finished=state not in RUNNING,
        stale=stale(props, job),
        log=journal(module, unit, props.get("InvocationID", ""), log_lines),
        **follow,
    )
