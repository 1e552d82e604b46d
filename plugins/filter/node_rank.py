# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node_rank filter: a host's torchrun node rank from its place in the inventory group."""

from __future__ import annotations

DOCUMENTATION = r"""
name: node_rank
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: A host's torchrun node rank, from its index in the inventory group
description:
  - Returns the position of O(_input) in O(hosts), counted from 0.
  - Pass the full group (C(groups[torchrun_group])), not C(ansible_play_hosts), so the rank of a
    host does not move when a run is narrowed with C(--limit).
  - Fails with a message naming the host when it is missing from the group or listed twice,
    since either would give two nodes the same rank and hang the static rendezvous.
options:
  _input:
    description: The inventory hostname whose rank is wanted.
    type: str
    required: true
  hosts:
    description: The ordered host list of the training group.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Show this host's node rank
  ansible.builtin.debug:
    msg: "{{ inventory_hostname | onprem.torchrun.node_rank(groups['trainers']) }}"
"""

RETURN = r"""
_value:
  description: The node rank, 0 for the first host of the group.
  type: int
"""

from ansible.errors import AnsibleFilterError


def node_rank(host, hosts):
    """Return the index of ``host`` in ``hosts``; refuse a missing or repeated host."""
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("node_rank: the host list must be a list, got %s" % type(hosts).__name__)
    host = str(host)
    hosts = [str(h) for h in hosts]
    count = hosts.count(host)
    if count == 0:
        raise AnsibleFilterError("node_rank: host %r is not in the training group (%s)" % (host, ", ".join(hosts) or "empty"))
    if count > 1:
        raise AnsibleFilterError("node_rank: host %r appears %d times in the training group" % (host, count))
    return hosts.index(host)


class FilterModule:
    """onprem.torchrun filters for node ranks."""

    def filters(self):
        return {"node_rank": node_rank}
