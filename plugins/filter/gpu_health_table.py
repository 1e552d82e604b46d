# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gpu_health_table filter: the GPU health gate's table of every node."""

from __future__ import annotations

DOCUMENTATION = r"""
name: gpu_health_table
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: One table of every node's GPUs and their health
description:
  - Takes each node's M(onprem.torchrun.gpu_health) result and returns aligned lines - a row per
    GPU (node, index, PCI address, model, C(ok) or its problems), then the problems not tied to a
    listed GPU (a GPU that fell off the bus, too few GPUs), then the notes.
options:
  _input:
    description: Node name to its gpu_health result.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the GPUs' health
  ansible.builtin.debug:
    msg: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'health'))) | onprem.torchrun.gpu_health_table }}"
"""

RETURN = r"""
_value:
  description: The table's lines.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.gpu_health import table


def gpu_health_table(verdicts):
    """The lines of module_utils.gpu_health.table."""
    if not isinstance(verdicts, dict):
        raise AnsibleFilterError("gpu_health_table: the input must map node names to gpu_health results, got %s" % type(verdicts).__name__)
    return table(verdicts)


class FilterModule:
    """onprem.torchrun filters for the GPU health gate."""

    def filters(self):
        return {"gpu_health_table": gpu_health_table}
