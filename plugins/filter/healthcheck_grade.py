# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The healthcheck_grade filter: grade a collective bandwidth report and name the slow node or link."""

from __future__ import annotations

DOCUMENTATION = r"""
name: healthcheck_grade
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: Grade the health check's all_reduce report as pass, degraded or fail
description:
  - Reads the JSON report of the health check (the healthcheck role's C(collective_bench.py)) and
    grades it. C(fail) when the bus bandwidth at the largest size is below O(fail_below_gbps);
    C(degraded) when it is below O(degraded_below_gbps), or when a pair of nodes is slower than
    O(pair_ratio) times its reference, or when sizes were left out because one all_reduce took
    longer than the check's time budget; C(pass) otherwise.
  - A pair is compared with its reference (C(reference_gbps) in the report) - the middle pair of its
    round where the round measured several pairs at the same time (they shared the network and, on
    small machines, the CPUs), else the fastest pair of the rounds. A pair the check measured again
    alone (C(retested)) counts with its better reading; a pair not read again because one of its
    nodes already stayed slow alone (C(explained_by)) counts with its round's reading. Reports
    without references compare every pair with the fastest pair of the rounds.
  - Slow pairs are blamed on a node when every pair with that node is slow (three nodes or more, and
    not every node); the other slow pairs are named as links.
  - A threshold of 0 turns that check off.
  - With NCCL the report says which network each node's processes used (C(transport)); C(fail)
    when the check expected RDMA (C(transport_expected=rdma), C(torchrun_fabric) of C(rdma) or
    C(auto) with RDMA ports found) and a node used sockets or did not say.
options:
  _input:
    description: The report, as the health check writes it.
    type: dict
    required: true
  fail_below_gbps:
    description: Bus bandwidth (GB/s) at the largest size under which the cluster fails.
    type: float
    default: 0
  degraded_below_gbps:
    description: Bus bandwidth (GB/s) at the largest size under which the cluster is degraded.
    type: float
    default: 0
  pair_ratio:
    description: A pair slower than this fraction of its reference is slow.
    type: float
    default: 0.5
"""

EXAMPLES = r"""
- name: Grade the report
  ansible.builtin.set_fact:
    grade: "{{ report | onprem.torchrun.healthcheck_grade(fail_below_gbps=5, degraded_below_gbps=20) }}"
"""

RETURN = r"""
_value:
  description: The grade.
  type: dict
  contains:
    status:
      description: C(pass), C(degraded) or C(fail).
      type: str
    reasons:
      description: One line per finding, naming the node or pair and the figures.
      type: list
      elements: str
    suspects:
      description: Nodes every one of whose pairs is slow.
      type: list
      elements: str
    slow_pairs:
      description: Pairs (C(a-b)) slower than O(pair_ratio) of their reference.
      type: list
      elements: str
    busbw_gbps:
      description: Bus bandwidth at the largest size.
      type: float
    table:
      description: The sizes and the pairs as aligned lines of text.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.table import aligned


def human(nbytes):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return "%d %s" % (nbytes // scale, unit)
    return "%d B" % nbytes


def rdma(network):
    """Whether NCCL's network is an RDMA one: IB (InfiniBand and RoCE) or a plugin's, not its sockets."""
    return network not in ("", "unknown") and "Socket" not in network


def reference(pair, best):
    """What a pair is compared with: its reference in the report, else the fastest pair of the rounds."""
    return float(pair.get("reference_gbps") or best)


def slow_pairs(pairs, ratio):
    """The fastest pair of the rounds and the pairs under ``ratio`` of their reference.

    Without references the yardstick is the fastest pair of the rounds: a pair measured again alone
    (``retested``) is measured in better conditions and says only whether that pair is slow, not
    how fast the others should be."""
    rounds = [p["busbw_gbps"] for p in pairs if not p.get("retested")]
    best = max(rounds or [p["busbw_gbps"] for p in pairs], default=0.0)
    if ratio <= 0 or best <= 0:
        return best, []
    return best, [p for p in pairs if p["busbw_gbps"] < ratio * reference(p, best)]


def gbps(values):
    """One figure, or the range of several: 0.800 or 0.700-0.900 (GB/s)."""
    low, high = min(values), max(values)
    return "%.3f" % low if "%.3f" % low == "%.3f" % high else "%.3f-%.3f" % (low, high)


def suspects(nodes, pairs, slow):
    """Nodes whose every pair is slow (3 nodes or more; not every node: then the cluster is slow).
    A slow link elsewhere does not hide them; it is named as a link."""
    if len(nodes) < 3 or not slow:
        return []
    slow_keys = {tuple(p["nodes"]) for p in slow}
    found = [n for n in nodes if any(n in p["nodes"] for p in pairs)
             and all(tuple(p["nodes"]) in slow_keys for p in pairs if n in p["nodes"])]
    return found if len(found) < len(nodes) else []


def healthcheck_grade(report, fail_below_gbps=0, degraded_below_gbps=0, pair_ratio=0.5):
    if not isinstance(report, dict) or not report.get("sizes"):
        raise AnsibleFilterError("healthcheck_grade: the report has no all_reduce sizes")
    largest = report["sizes"][-1]
    busbw = float(largest["busbw_gbps"])
    reasons, status = [], "pass"
    size = human(largest["bytes"])
    if fail_below_gbps and busbw < float(fail_below_gbps):
        status = "fail"
        reasons.append("all_reduce of %s over %d processes: bus bandwidth %.3f GB/s is below healthcheck_fail_below_gbps=%s"
                       % (size, report["world_size"], busbw, fail_below_gbps))
    elif degraded_below_gbps and busbw < float(degraded_below_gbps):
        status = "degraded"
        reasons.append("all_reduce of %s over %d processes: bus bandwidth %.3f GB/s is below healthcheck_degraded_below_gbps=%s"
                       % (size, report["world_size"], busbw, degraded_below_gbps))
    if report.get("sizes_cut"):
        reasons.append("all_reduce of %s took longer than the time budget (%s s); larger sizes left out: %s"
                       % (size, report.get("budget_seconds", "?"), ", ".join(human(b) for b in report["sizes_cut"])))
        status = "degraded" if status == "pass" else status
    pairs = report.get("pairs") or []
    best, slow = slow_pairs(pairs, float(pair_ratio))
    named = suspects(report.get("nodes") or [], pairs, slow)
    for node in named:
        mine = [p for p in pairs if node in p["nodes"]]
        reasons.append("%s: every pair with it is slow (%s GB/s; their reference %s GB/s)"
                       % (node, ", ".join("%.3f" % p["busbw_gbps"] for p in mine), gbps([reference(p, best) for p in mine])))
    for pair in slow:
        if not set(pair["nodes"]) & set(named):
            reasons.append("link %s: %.3f GB/s, under %s of its reference (%.3f GB/s)"
                           % ("-".join(pair["nodes"]), pair["busbw_gbps"], pair_ratio, reference(pair, best)))
    if slow and status == "pass":
        status = "degraded"
    transport = report.get("transport") or {}
    if report.get("transport_expected") == "rdma":
        for node, entry in sorted(transport.items()):
            if not rdma(entry["network"]):
                status = "fail"
                reasons.append("%s: NCCL used %s%s where RDMA ports are active (torchrun_fabric); its NCCL_IB_HCA, the "
                               "memlock limit or /dev/infiniband in the unit is wrong; the health check's journal has NCCL's own words"
                               % (node, entry["network"], " (%s)" % ", ".join(entry["devices"]) if entry["devices"] else ""))
    rows = [["all_reduce", "processes", "time (us)", "algbw (GB/s)", "busbw (GB/s)"]]
    rows += [[human(s["bytes"]), str(report["world_size"]), "%.1f" % s["time_us"], "%.3f" % s["algbw_gbps"],
              "%.3f" % s["busbw_gbps"]] for s in report["sizes"]]
    table = aligned(rows)
    if pairs:
        slow_keys = {tuple(p["nodes"]) for p in slow}
        prows = [["pair", "size", "busbw (GB/s)", "of reference", ""]]  # a pair measured alone may pass 100 %
        prows += [["-".join(p["nodes"]), human(p["bytes"]), "%.3f" % p["busbw_gbps"],
                   "%d%%" % round(100 * p["busbw_gbps"] / reference(p, best)) if reference(p, best) else "-",
                   " ".join(w for w in ("SLOW" if tuple(p["nodes"]) in slow_keys else "", "(measured again)" if p.get("retested") else "",
                                        "(%s stayed slow alone)" % p["explained_by"] if p.get("explained_by") else "")
                            if w)] for p in pairs]
        table += [""] + aligned(prows)
        if "pair_rounds" in report:
            table.append("pairs: %d in %d round(s) of pairs measured at the same time, %d reading(s) alone; %.1f s"
                         % (len(pairs), report["pair_rounds"], report.get("pair_retests", 0), report.get("pair_seconds", 0.0)))
    if transport:
        trows = [["node", "network", "devices", "paths"]]
        trows += [[node, entry["network"], ", ".join(entry["devices"]) or "-", ", ".join(entry["paths"]) or "-"]
                  for node, entry in sorted(transport.items())]
        table += [""] + aligned(trows)
    return {"status": status, "reasons": reasons, "suspects": named, "slow_pairs": ["-".join(p["nodes"]) for p in slow],
            "busbw_gbps": busbw, "table": table}


class FilterModule:
    """Grade the health check's report."""

    def filters(self):
        return {"healthcheck_grade": healthcheck_grade}
