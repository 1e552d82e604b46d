# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendezvous: static and c10d, the timeouts, restarts and the start limit."""

from __future__ import annotations

from ansible_collections.onprem.torchrun.plugins.module_utils.contract import start_span
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, NNODES, Problem, problem, shown


def rendezvous(c: Cluster) -> list[Problem]:
    """--nnodes against the group, node ranks never set by hand, timeouts, and rank variables pre-set on a node."""
    host = c.master
    found = []
    size = len(c.hosts)
    backend = c.cluster("torchrun_rdzv_backend")
    nnodes = c.cluster("torchrun_nnodes")
    nn = "" if nnodes is None else str(nnodes).strip()
    if backend == "static" and nn and nn != str(size):
        found.append(problem(host, "torchrun_nnodes", "torchrun_nnodes=%s but group %s has %d node(s); the static rendezvous needs exactly "
                                                      "the group (leave it empty)" % (shown(nn), c.group, size)))
    elif backend == "c10d" and nn:
        match = NNODES.match(nn)
        low = int(match.group(1)) if match else 0
        high = int(match.group(2) or low) if match else 0
        if not match or low < 1 or high < low:
            found.append(problem(host, "torchrun_nnodes", "torchrun_nnodes=%s must be N or MIN:MAX with 1 <= MIN <= MAX" % shown(nn)))
        elif not low <= size <= high:
            found.append(problem(host, "torchrun_nnodes", "torchrun_nnodes=%s does not admit the %d node(s) of group %s" % (nn, size, c.group)))
    for node in c.hosts:
        if c.get(node, "torchrun_node_rank") is not None:
            why = ("the c10d rendezvous assigns ranks itself" if backend == "c10d"
                   else "the node rank is the host's place in group %s" % c.group)
            found.append(problem(node, "torchrun_node_rank", "torchrun_node_rank is set, but %s; remove it" % why))
    for var in ("torchrun_rdzv_join_timeout", "torchrun_collective_timeout", "torchrun_rdzv_last_call_timeout",
                "torchrun_rdzv_close_timeout", "torchrun_rdzv_read_timeout", "job_join_timeout", "job_wait_timeout",
                "launcher_timeout_stop_sec", "healthcheck_timeout", "connectivity_timeout", "connectivity_listener_seconds",
                "torchrun_package_stall_timeout"):
        value = c.cluster(var)
        if value is not None and value <= 0:
            found.append(problem(host, var, "%s=%s must be a positive number of seconds" % (var, value)))
    for var in ("launcher_max_restarts", "launcher_restart_sec", "job_log_lines", "launcher_start_limit_interval_sec"):
        value = c.cluster(var)
        if value is not None and value < 0:
            found.append(problem(host, var, "%s=%s must not be negative" % (var, value)))
    found += _start_limit(c)
    for node in c.hosts:
        for entry in (c.node_facts(node) or {}).get("preset", []):
            if "systemd" in entry.get("where", ""):
                fix = ("every unit inherits it, and a stale rank or master hangs the job: systemctl unset-environment %s, and drop it "
                       "from DefaultEnvironment=" % entry["name"])
            else:
                fix = "login shells inherit it (a torchrun started by hand would hang): remove the line"
            found.append(problem(node, entry["name"], "%s=%s is pre-set in %s; %s" % (entry["name"], entry.get("value", ""), entry["where"], fix)))
    return found


def _start_limit(c: Cluster) -> list[Problem]:
    """A job whose peer is gone must end failed: burst + 1 starts, each waiting the rendezvous timeout, fit the window."""
    burst = c.cluster("launcher_start_limit_burst")
    window = c.cluster("launcher_start_limit_interval_sec")
    timeout = c.cluster("torchrun_rdzv_join_timeout")
    delay = c.cluster("launcher_restart_sec")
    if burst is not None and burst < 1:
        return [problem(c.master, "launcher_start_limit_burst", "launcher_start_limit_burst=%s must be at least 1" % burst)]
    if None in (burst, window, timeout, delay) or window <= 0 or c.cluster("launcher_restart") == "no":
        return []
    span = start_span(burst, timeout, delay)
    if window > span:
        return []
    return [problem(c.master, "launcher_start_limit_interval_sec",
                    "launcher_start_limit_interval_sec=%s is not longer than %s starts that each wait torchrun_rdzv_join_timeout=%s "
                    "+ launcher_restart_sec=%s (%s s): a job whose peer is gone would restart forever; leave it 0 (derived) or give "
                    "more than %s" % (window, burst, timeout, delay, span, span))]
