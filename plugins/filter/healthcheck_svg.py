# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The healthcheck_svg filter: the health check's pair bandwidths as a nodes x nodes heatmap."""

from __future__ import annotations

DOCUMENTATION = r"""
name: healthcheck_svg
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: The health check's pair bandwidths as an SVG heatmap
description:
  - Takes the graded health check (P(onprem.torchrun.healthcheck_grade#filter)'s result with the report
    under C(report), as the healthcheck role keeps it) and returns an SVG picture - nodes x nodes, each
    cell a pair's bus bandwidth coloured from red (none) to green (its reference), the slow pairs
    marked and every node the grade names as slow outlined along its row and its column.
  - The healthcheck role writes it beside its JSON report (C(torchrun-healthcheck.svg)); at 50 nodes the
    pair table is 1,225 lines, the picture one glance. SVG is text; no controller dependency.
options:
  _input:
    description: The graded report (C(status), C(slow_pairs), C(suspects) and C(report) with C(nodes) and C(pairs)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Draw the pair bandwidths
  ansible.builtin.copy:
    content: "{{ healthcheck_result | onprem.torchrun.healthcheck_svg }}"
    dest: ./torchrun-healthcheck.svg
    mode: "0644"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
_value:
  description: The SVG document.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils import svg


def healthcheck_svg(result):
    """The heatmap (see DOCUMENTATION)."""
    if not isinstance(result, dict) or not isinstance(result.get("report"), dict):
        raise AnsibleFilterError("healthcheck_svg: expects the graded health check (healthcheck_grade's result with 'report')")
    report = result["report"]
    nodes = list(report.get("nodes") or [])
    pairs = {}
    for pair in report.get("pairs") or []:
        key = frozenset(pair["nodes"])
        pairs[key] = pair if key not in pairs or pair["busbw_gbps"] > pairs[key]["busbw_gbps"] else pairs[key]
    best = max([p["busbw_gbps"] for p in pairs.values()] or [0.0])
    # The grade names slow pairs "a-b" (node names may hold "-": match them against the pairs, not split).
    slow = {key for key, p in pairs.items() if "-".join(p["nodes"]) in (result.get("slow_pairs") or [])}

    def cell(row, column):
        if row == column:
            return None
        pair = pairs.get(frozenset((row, column)))
        if pair is None:
            return svg.GREY, "", ["unmeasured"], "%s-%s: not measured" % (row, column)
        bw, ref = float(pair["busbw_gbps"]), float(pair.get("reference_gbps") or best)
        is_slow = frozenset(pair["nodes"]) in slow
        tip = "%s: %.3f GB/s, reference %.3f GB/s%s" % ("-".join(pair["nodes"]), bw, ref, ", SLOW" if is_slow else "")
        return svg.shade(bw / ref if ref > 0 else 0.0), "%.2f" % bw, ["slow"] if is_slow else [], tip

    notes = ["%s: %s, %s processes on %d nodes; bus bandwidth of each pair (GB/s), green at its reference"
             % (str(result.get("status", "")).upper(), report.get("backend", ""), report.get("world_size", ""), len(nodes))]
    notes += ["slow: %s" % ", ".join(result["suspects"])] if result.get("suspects") else []
    if isinstance(result.get("busbw_gbps"), (int, float)):
        notes.append("all nodes: %.3f GB/s at the largest size" % float(result["busbw_gbps"]))
    return svg.heatmap("torchrun health check", nodes, cell, marked=tuple(result.get("suspects") or ()), notes=tuple(notes))


class FilterModule:
    """onprem.torchrun filters for the health check's picture."""

    def filters(self):
        return {"healthcheck_svg": healthcheck_svg}
