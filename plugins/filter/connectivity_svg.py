# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connectivity_svg filter: the connectivity check's all-pairs matrix as a picture."""

from __future__ import annotations

DOCUMENTATION = r"""
name: connectivity_svg
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: The connectivity check's all-pairs matrix as an SVG picture
description:
  - Takes P(onprem.torchrun.probe_matrix#filter)'s result and returns an SVG picture - nodes x nodes, rows
    connect to columns, a green cell where every port was reached, a red one where a connection failed
    (the reasons in its tooltip, and in the cell up to 16 nodes), grey where the node reported nothing;
    the node every failure is to or from (C(culprits)) is outlined along its row and its column.
  - The connectivity role writes it beside its JSON report (C(torchrun-connectivity.svg)).
options:
  _input:
    description: The matrix (C(nodes), C(cells), C(failures), C(checked), C(culprits)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Draw the matrix
  ansible.builtin.copy:
    content: "{{ connectivity_matrix | onprem.torchrun.connectivity_svg }}"
    dest: ./torchrun-connectivity.svg
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


def connectivity_svg(matrix):
    """The picture (see DOCUMENTATION)."""
    if not isinstance(matrix, dict) or not isinstance(matrix.get("cells"), dict) or "nodes" not in matrix:
        raise AnsibleFilterError("connectivity_svg: expects probe_matrix's result (nodes, cells)")
    cells = matrix["cells"]

    def cell(row, column):
        if row == column:
            return None
        text = str((cells.get(row) or {}).get(column, "?"))
        if text == "ok":
            return svg.GREEN, "", [], "%s -> %s: ok" % (row, column)
        if text == "?":
            return svg.GREY, "?", ["unknown"], "%s -> %s: %s reported nothing" % (row, column, row)
        return svg.RED, text.split()[-1] if text.split() else text, ["failed"], "%s -> %s: %s" % (row, column, text)

    failed = len(matrix.get("failures") or [])
    notes = ["%d of %d connection(s) failed; rows connect to columns" % (failed, int(matrix.get("checked") or 0))]
    notes += ["every failed connection is to or from %s" % ", ".join(matrix["culprits"])] if matrix.get("culprits") else []
    return svg.heatmap("torchrun connectivity", list(matrix["nodes"]), cell, marked=tuple(matrix.get("culprits") or ()),
                       notes=tuple(notes))


class FilterModule:
    """onprem.torchrun filters for the connectivity check's picture."""

    def filters(self):
        return {"connectivity_svg": connectivity_svg}
