# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nvidia_packages filter: the packages the nvidia role installs on a node."""

from __future__ import annotations

DOCUMENTATION = r"""
name: nvidia_packages
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: A node's NVIDIA packages - driver, kernel modules, daemons, toolkit, NCCL, RDMA
description:
  - Takes the node's facts (C(distribution), C(distribution_version), C(kernel)) and the nvidia
    role's settings and returns the packages to install, in one transaction, as NVIDIA's driver
    installation guide (release 580) and the distribution name them for a compute-only node.
  - Debian 12 and 13 and Ubuntu 22.04 and 24.04. From NVIDIA's repository on Debian,
    C(nvidia-driver-cuda) with C(nvidia-kernel-open-dkms) (open modules) or C(nvidia-kernel-dkms);
    on Ubuntu C(libnvidia-compute), C(nvidia-dkms[-open]) and C(nvidia-utils), with the branch in
    their names up to 580 and without it from 590. From the distribution, Ubuntu's C(-server)
    packages (prebuilt signed modules without DKMS) and Debian's own branch.
  - The validator plans the same way (preflight, with the node's facts), so a choice the node
    cannot take is refused before any change; here it fails the task.
options:
  _input:
    description: The node's C(ansible_facts).
    type: dict
    required: true
  settings:
    description: The role's settings (nvidia_driver_source, nvidia_driver_branch, nvidia_kernel_modules,
      nvidia_dkms, nvidia_persistenced, nvidia_fabricmanager, nvidia_cuda_toolkit, nvidia_nccl).
    type: dict
    required: true
  gpu_ids:
    description: The PCI device IDs of the node's GPUs (M(onprem.torchrun.node_probe)'s C(gpu_ids)).
    type: list
    elements: str
    default: []
  nvswitches:
    description: The node's NVSwitch bridges (the fabric manager with C(auto)).
    type: int
    default: 0
  rdma:
    description: Whether the job uses RDMA here (the RDMA user space comes too).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Install what the node needs
  ansible.builtin.apt:
    name: "{{ (ansible_facts | onprem.torchrun.nvidia_packages(settings, gpu_ids=probe.gpu_ids)).packages }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    packages:
      description: The packages, in install order.
      type: list
      elements: str
    flavour:
      description: The kernel modules taken, C(open) or C(proprietary) (empty without a driver).
      type: str
    repo_distro:
      description: The folder of NVIDIA's repository for the release (C(debian12), C(ubuntu2404)).
      type: str
    pinned:
      description: Whether the branch pin applies (the driver comes from NVIDIA's repository).
      type: bool
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.plugin_utils.driver_plan import plan


def nvidia_packages(facts, settings, gpu_ids=None, nvswitches=0, rdma=False):
    """The node's plan as a dict; fails on a choice the node cannot take."""
    if not isinstance(facts, dict) or not isinstance(settings, dict):
        raise AnsibleFilterError("nvidia_packages: needs the node's ansible_facts and the role's settings (dicts)")
    found = plan(str(facts.get("distribution", "")), str(facts.get("distribution_version", "")), str(facts.get("kernel", "")),
                 settings, gpu_ids=gpu_ids or [], nvswitches=int(nvswitches or 0), rdma=bool(rdma))
    if found.problems:
        raise AnsibleFilterError("; ".join("%s: %s" % problem for problem in found.problems))
    return {"packages": found.packages, "flavour": found.flavour, "repo_distro": found.repo_distro, "pinned": found.pinned}


class FilterModule:
    """The nvidia role's package plan."""

    def filters(self):
        return {"nvidia_packages": nvidia_packages}
