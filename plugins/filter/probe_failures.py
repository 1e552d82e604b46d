# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe_failures filter: the failed pairs of a connectivity check, one line each."""

from __future__ import annotations

DOCUMENTATION = r"""
name: probe_failures
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: List the node pairs that failed the connectivity check
description:
  - Reads the registered M(onprem.torchrun.tcp_probe) result O(var) of every host in O(_input)
    and returns one line per failed connection, naming the source node, the target node, its
    address and port, and the reason.
options:
  _input:
    description: The hosts that probed.
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) of the play.
    type: dict
    required: true
  var:
    description: The name under which each host registered its probe result.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show the failed pairs
  ansible.builtin.debug:
    msg: "{{ ansible_play_hosts | onprem.torchrun.probe_failures(hostvars, 'probe') }}"
"""

RETURN = r"""
_value:
  description: Lines such as C(node2 -> node1 10.0.0.1:29500 timed out).
  type: list
  elements: str
"""


def probe_failures(hosts, hostvars, var):
    """Return one line per failed connection of every host's probe result."""
    lines = []
    for host in hosts:
        result = hostvars[host].get(var) or {}
        for target in result.get("results") or []:
            if not target.get("ok"):
                lines.append("%s -> %s %s:%s %s" % (host, target["name"], target["host"], target["port"], target["reason"]))
    return lines


class FilterModule:
    """onprem.torchrun filters for the connectivity check."""

    def filters(self):
        return {"probe_failures": probe_failures}
