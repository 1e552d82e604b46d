# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The training_group filter: the training group's name, refused when the inventory has no such group or it is empty."""

from __future__ import annotations

DOCUMENTATION = r"""
name: training_group
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: The training group's name, when the inventory has it with nodes
description:
  - Returns O(_input) when O(groups) has a group of that name with at least one host.
  - Fails with a message naming the group and C(torchrun_group) otherwise; a mistyped group would
    make a play skip with "no hosts matched" and succeed.
  - The playbooks template each play's C(hosts) through it, so the refusal comes before any host is
    contacted. That also makes ansible-playbook's own process load the collection's filters once,
    before it forks a worker for each task, and every worker inherits them instead of importing each
    filter file again (a collection filter is found by importing every filter file of the collection).
options:
  _input:
    description: The group's name (C(torchrun_group), C(trainers) unless set).
    type: str
    required: true
  groups:
    description: The inventory's groups, the magic variable C(groups).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Run on the training group, refused when it is missing or empty
  hosts: "{{ torchrun_group | default('trainers') | onprem.torchrun.training_group(groups) }}"
  tasks: []
"""

RETURN = r"""
_value:
  description: The group's name, unchanged.
  type: str
"""

from ansible.errors import AnsibleFilterError


def training_group(name, groups):
    """Return ``name`` when ``groups`` has it with hosts; refuse a missing or empty group by name."""
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError("inventory: torchrun_group must be the name of an inventory group, got %r" % (name,))
    if not hasattr(groups, "get") or not groups.get(name):
        raise AnsibleFilterError("inventory: group '%s' (torchrun_group) is missing or empty; list the training nodes in it, "
                                 "first the master node" % name)
    return name


class FilterModule:
    """onprem.torchrun filters for the training group."""

    def filters(self):
        return {"training_group": training_group}
