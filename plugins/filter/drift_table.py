# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drift_table filter: compare the training stack's versions across nodes."""

from __future__ import annotations

DOCUMENTATION = r"""
name: drift_table
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: Compare every node's stack versions and show who differs
description:
  - Reads the registered M(onprem.torchrun.stack_info) result O(var) of every host in O(_input)
    and returns the components, those whose version is not the same on every node, and a table
    (node x component) with the differing columns marked C(*) in the header.
  - A host without the result (it did not run) shows C(?) and counts as differing.
extends_documentation_fragment:
  - onprem.torchrun.cluster
options:
  var:
    description:
      - The name under which each host registered its stack_info result; a dotted name reads a key of it
        (C(__preflight_node.stack), what M(onprem.torchrun.node_probe) read with its O(onprem.torchrun.node_probe#module:stack)).
    type: str
    required: true
  packages:
    description:
      - Further distributions to compare, looked up in the result's C(distributions) (node_probe lists every one);
        a result without C(distributions) names its own (stack_info's O(onprem.torchrun.stack_info#module:packages)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Show the stack of every node
  ansible.builtin.debug:
    msg: "{{ (ansible_play_hosts | onprem.torchrun.drift_table(hostvars, 'stack')).table }}"
"""

RETURN = r"""
_value:
  description: The comparison.
  type: dict
  contains:
    components:
      description: The component names, in the order of the table's columns.
      type: list
      elements: str
    drift:
      description: The components whose version differs between nodes; empty when all agree.
      type: list
      elements: str
    lines:
      description: One line per differing component naming each node's version.
      type: list
      elements: str
    table:
      description: The table as aligned lines of text, a header line first.
      type: list
      elements: str
"""

from ansible_collections.onprem.torchrun.plugins.module_utils.stack import normalized
from ansible_collections.onprem.torchrun.plugins.module_utils.table import aligned


def stack_versions(result, packages=()):
    """The versions a stack result holds: its own, and each of ``packages`` from its list of every distribution."""
    result = result or {}
    versions = dict(result.get("versions") or {})
    listed = result.get("distributions")
    if isinstance(listed, dict):
        for name in packages:
            versions.setdefault(name, listed.get(normalized(name), "none"))
    return versions


def lookup(values, var):
    """``var`` of a host's variables; a dotted name reads into it (None where a part is missing)."""
    found = values
    for part in var.split("."):
        found = found.get(part) if hasattr(found, "get") else None
        if found is None:
            return None
    return found


def drift_table(hosts, hostvars, var, packages=()):
    """Return the components, the drifting ones, and a node x component table."""
    hosts = list(hosts)
    versions = {host: stack_versions(lookup(hostvars[host], var), packages) for host in hosts}
    components = []
    for host in hosts:
        components += [name for name in versions[host] if name not in components]
    cells = {host: [str(versions[host].get(name, "?")) for name in components] for host in hosts}
    drift = [name for index, name in enumerate(components) if len({cells[h][index] for h in hosts}) > 1]
    lines = ["%s: %s" % (name, ", ".join("%s %s" % (h, cells[h][components.index(name)]) for h in hosts)) for name in drift]
    header = ["node"] + [name + ("*" if name in drift else "") for name in components]
    table = aligned([header] + [[host] + cells[host] for host in hosts])
    return {"components": components, "drift": drift, "lines": lines, "table": table}


class FilterModule:
    """onprem.torchrun filters for the stack report."""

    def filters(self):
        return {"drift_table": drift_table}
