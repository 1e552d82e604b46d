# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fabric_plan filter: whether a node's job uses RDMA, and its NCCL environment and unit settings."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fabric_plan
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: A node's NCCL network plan from its RDMA ports
description:
  - Takes what M(onprem.torchrun.node_probe) read of the node's RDMA fabric (its C(fabric))
    and returns whether the job uses RDMA, the NCCL variables of its environment (C(NCCL_IB_HCA) as
    exact names, C(NCCL_IB_GID_INDEX) on RoCE, C(NCCL_IB_DISABLE=1) for sockets), the
    /dev/infiniband devices its unit allows, and the problems preflight refuses.
  - The job's unit, the health check and C(make gpu-check) take their NCCL network from here.
options:
  _input:
    description: The C(fabric) that node_probe returned for the node.
    type: dict
    required: true
  mode:
    description: C(auto), C(rdma) or C(socket) (torchrun_fabric).
    type: str
    default: auto
  hcas:
    description: The ports NCCL may use (torchrun_fabric_hcas); empty takes every ACTIVE port.
    type: list
    elements: str
    default: []
  address:
    description: The node's cluster address; on RoCE the GID that carries it is preferred.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Show the node's NCCL network
  ansible.builtin.debug:
    msg: "{{ probe.fabric | onprem.torchrun.fabric_plan(torchrun_fabric, torchrun_fabric_hcas, '10.0.0.11') }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    rdma:
      description: Whether NCCL is to use RDMA.
      type: bool
    env:
      description: NCCL variables for the job's environment.
      type: dict
    char_devices:
      description: The /dev/infiniband devices the unit allows (with RDMA).
      type: list
      elements: str
    unit_settings:
      description: >-
        The systemd settings a hardened process needs to use the ports (C(LimitMEMLOCK=infinity), a
        C(DeviceAllow) per device); the job unit's drop-in, the health check and gpu-check take them.
        Empty without RDMA.
      type: list
      elements: str
    ports:
      description: The ports in use, C(device:port).
      type: list
      elements: str
    link_layer:
      description: C(InfiniBand) or C(Ethernet) (RoCE); empty without RDMA.
      type: str
    rate:
      description: The ports' rate as the kernel writes it.
      type: str
    problems:
      description: What preflight refuses on this node.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.fabric import MODES, nccl_plan


def fabric_plan(found, mode="auto", hcas=None, address=""):
    """The node's plan (module_utils.fabric.nccl_plan)."""
    if mode not in MODES:
        raise AnsibleFilterError("fabric_plan: mode %r is not one of %s" % (mode, ", ".join(MODES)))
    if not isinstance(found, dict):
        raise AnsibleFilterError("fabric_plan: the input must be node_probe's fabric (a dict), got %s" % type(found).__name__)
    return nccl_plan(found, mode, list(hcas or []), str(address or ""))


class FilterModule:
    """onprem.torchrun filters for the RDMA fabric."""

    def filters(self):
        return {"fabric_plan": fabric_plan}
