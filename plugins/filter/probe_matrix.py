# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe_matrix filter: the all-pairs connectivity result as data and as a printable table."""

from __future__ import annotations

DOCUMENTATION = r"""
name: probe_matrix
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: Turn every node's connectivity probe into one all-pairs matrix
description:
  - Reads the registered M(onprem.torchrun.tcp_probe) result O(var) of every host in O(_input)
    (each host probed the master port and every peer's probe port) and returns the matrix of
    results, from each node (rows) to each node (columns).
  - A cell is C(ok), C(-) on the diagonal, C(?) for a pair that was not probed (a host that did
    not run the check), or the failed port(s) with the reason, such as C(52000 timed out).
  - For hundreds of nodes it also returns a short summary - how many connections were checked and
    failed, the node that every failure involves when one does, and the first O(shown) failures - so
    the play prints that instead of an N x N table.
extends_documentation_fragment:
  - onprem.torchrun.cluster
options:
  var:
    description: The name under which each host registered its probe result.
    type: str
    required: true
  shown:
    description: How many failed connections the summary lists; the rest are counted.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Print the matrix
  ansible.builtin.debug:
    msg: "{{ (ansible_play_hosts | onprem.torchrun.probe_matrix(hostvars, 'probe')).table }}"
"""

RETURN = r"""
_value:
  description: The matrix.
  type: dict
  contains:
    nodes:
      description: The nodes, in order (rows and columns).
      type: list
      elements: str
    cells:
      description: C(cells[source][target]) is the text of one cell.
      type: dict
    failures:
      description: One line per failed connection, such as C(node2 -> node1 10.0.0.1:29500 refused).
      type: list
      elements: str
    checked:
      description: How many connections were probed.
      type: int
    culprits:
      description: The one node every failed connection is to or from, when there is one (in a group of three or more).
      type: list
      elements: str
    summary:
      description: The connections checked and failed, the culprit, and the first O(shown) failures, as lines.
      type: list
      elements: str
    table:
      description: The matrix as aligned lines of text, a header line first.
      type: list
      elements: str
"""

from ansible_collections.onprem.torchrun.plugins.module_utils.table import aligned


def probe_matrix(hosts, hostvars, var, shown=20):
    """Return the all-pairs matrix of the hosts' probe results."""
    nodes = list(hosts)
    cells, failures, ends, checked = {}, [], [], 0
    for source in nodes:
        results = (hostvars[source].get(var) or {}).get("results")
        checked += len(results or [])
        row = {target: ("-" if target == source else "?" if results is None else "ok") for target in nodes}
        bad = {}
        for result in results or []:
            if not result.get("ok"):
                bad.setdefault(result["name"], []).append("%s %s" % (result["port"], result["reason"]))
                failures.append("%s -> %s %s:%s %s" % (source, result["name"], result["host"], result["port"], result["reason"]))
                ends.append((source, result["name"]))
        row.update({target: ", ".join(reasons) for target, reasons in bad.items()})
        cells[source] = row
    rows = [["from \\ to"] + nodes] + [[source] + [cells[source][target] for target in nodes] for source in nodes]
    table = aligned(rows)
    common = [n for n in nodes if ends and all(n in pair for pair in ends)]
    culprits = common if len(common) == 1 and len(nodes) > 2 else []
    summary = ["connectivity: %d of %d connection(s) failed" % (len(failures), checked)] if failures else []
    for node in culprits:
        summary.append("%s: every failed connection is to it (%d) or from it (%d); look at %s first (down, its firewall, its "
                       "address)" % (node, sum(b == node for _a, b in ends), sum(a == node for a, _b in ends), node))
    if len(common) == 2:
        summary.append("every failed connection is between %s and %s: the link between them, or either one's firewall" % tuple(common))
    summary += failures[:int(shown)]
    if len(failures) > int(shown):
        summary.append("... and %d more" % (len(failures) - int(shown)))
    return {"nodes": nodes, "cells": cells, "failures": failures, "checked": checked, "culprits": culprits, "summary": summary,
            "table": table}


class FilterModule:
    """onprem.torchrun filters for the connectivity check."""

    def filters(self):
        return {"probe_matrix": probe_matrix}
