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
extends_documentation_fragment:
  - onprem.torchrun.cluster
options:
  var:
    description: The name under which each host registered its probe result.
    type: str
    required: true
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
    table:
      description: The matrix as aligned lines of text, a header line first.
      type: list
      elements: str
"""

from ansible_collections.onprem.torchrun.plugins.module_utils.table import aligned


def probe_matrix(hosts, hostvars, var):
    """Return the all-pairs matrix of the hosts' probe results."""
    nodes = list(hosts)
    cells, failures = {}, []
    for source in nodes:
        results = (hostvars[source].get(var) or {}).get("results")
        row = {target: ("-" if target == source else "?" if results is None else "ok") for target in nodes}
        bad = {}
        for result in results or []:
            if not result.get("ok"):
                bad.setdefault(result["name"], []).append("%s %s" % (result["port"], result["reason"]))
                failures.append("%s -> %s %s:%s %s" % (source, result["name"], result["host"], result["port"], result["reason"]))
        row.update({target: ", ".join(reasons) for target, reasons in bad.items()})
        cells[source] = row
    rows = [["from \\ to"] + nodes] + [[source] + [cells[source][target] for target in nodes] for source in nodes]
    table = aligned(rows)
    return {"nodes": nodes, "cells": cells, "failures": failures, "table": table}


class FilterModule:
    """onprem.torchrun filters for the connectivity check."""

    def filters(self):
        return {"probe_matrix": probe_matrix}
