# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The training_group filter: the training group's name, refused when the inventory has no such group or it is empty."""

from __future__ import annotations

DOCUMENTATION = r"""
name: training_group
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: The training group's name, refused when the inventory lacks the group or it is empty
description:
  - Returns O(_input), the name of the training group.
  - With O(groups), fails with a message naming the group and C(torchrun_group) when O(groups) has no
    group of that name or it has no host; a mistyped group would make a play skip with "no hosts
    matched" and succeed. C(check_group.yml), which every playbook on the group imports first, refuses
    so, on the controller.
  - Without O(groups), only checks that O(_input) is a name. Each play on the training group takes its
    C(hosts) through it, after C(check_group.yml) (and C(ansible-playbook --syntax-check) has no
    inventory to check against). ansible-playbook's own process templates a play's C(hosts), so it
    loads the collection's filters there once, before it forks a worker for each task, and every
    worker inherits them instead of importing each filter file again (a collection filter is found by
    importing every filter file of the collection).
options:
  _input:
    description: The group's name (C(torchrun_group), C(trainers) unless set).
    type: str
    required: true
  groups:
    description: The inventory's groups, the magic variable C(groups); left out, the group is not looked up.
    type: dict
"""

EXAMPLES = r"""
- name: Refuse a training group that is missing or empty
  ansible.builtin.assert:
    that: torchrun_group | default('trainers') | onprem.torchrun.training_group(groups) | length > 0

- name: Run on the training group
  hosts: "{{ torchrun_group | default('trainers') | onprem.torchrun.training_group }}"
  tasks: []
"""

RETURN = r"""
_value:
  description: The group's name, unchanged.
  type: str
"""

from ansible.errors import AnsibleFilterError


def training_group(name, groups=None):
    """Return ``name``; with ``groups``, refuse a group missing there or without hosts, by name."""
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError("inventory: torchrun_group must be the name of an inventory group, got %r" % (name,))
    if groups is not None and (not hasattr(groups, "get") or not groups.get(name)):
        raise AnsibleFilterError("inventory: group '%s' (torchrun_group) is missing or empty; list the training nodes in it, "
                                 "first the master node" % name)
    return name


class FilterModule:
    """onprem.torchrun filters for the training group."""

    def filters(self):
        return {"training_group": training_group}
