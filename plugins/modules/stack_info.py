#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the versions of a node's training stack: driver, CUDA, NCCL, Python, torch, Lightning."""

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_info
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: Versions of the training stack on a node, and its GPUs
description:
  - Reads the loaded NVIDIA driver (C(/proc/driver/nvidia/version), or what nvidia-smi reports where
    a container has no such file), the CUDA toolkit (C(nvcc --version)), the system NCCL package
    (dpkg or rpm), and, from the job's venv, Python, torch, the CUDA and NCCL versions torch was
    built with, Lightning and any other named distributions.
  - Lists the GPUs with C(nvidia-smi) when it is there (index, model, memory, driver, MIG mode).
  - A component that is not installed reads C(none). Reads only; changes nothing.
options:
  venv:
    description:
      - The job's venv (its C(bin/python) is asked about torch and Lightning). Without it, or when
        it does not exist yet, those components read C(none).
    type: path
  runner:
    description:
      - The start of a command that runs the venv's Python where it is - a job's image
        (filter P(onprem.torchrun.container_probe#filter)) - instead of on the node. The venv is then
        the path inside the image. Empty runs it on the node.
    type: list
    elements: str
    default: []
    version_added: 0.3.0
  packages:
    description: Further distributions of the venv to report, such as the job's requirements.
    type: list
    elements: str
    default: []
  requirements:
    description:
      - Requirement specifiers (as in a requirements file, such as C(numpy>=1.26)) that the venv's own
        Python checks; C(requirements_missing) lists each one it does not satisfy.
    type: list
    elements: str
    default: []
    version_added: 0.3.0
  processes:
    description: The job's processes on the node, when a number (0 - one per GPU); C(processes_over_gpus) says whether nvidia-smi lists fewer GPUs.
    type: int
    default: 0
    version_added: 0.3.0
extends_documentation_fragment:
  - onprem.torchrun.cluster.read_only
"""

EXAMPLES = r"""
- name: Read the stack
  onprem.torchrun.stack_info:
    venv: /opt/torchrun/venv
  register: stack
"""

RETURN = r"""
versions:
  description: Component name to version (C(none) when absent); the keys are C(driver),
    C(cuda_toolkit), C(nccl_system), C(python), C(torch), C(torch_cuda), C(torch_nccl),
    C(lightning), then each of O(packages).
  returned: always
  type: dict
  sample: {"driver": "550.54.15", "cuda_toolkit": "none", "nccl_system": "none", "python": "3.11.2",
           "torch": "2.13.0+cpu", "torch_cuda": "none", "torch_nccl": "none", "lightning": "2.6.6"}
driver_installed:
  description: The version of the installed NVIDIA kernel module (C(modinfo)), which is not the
    loaded one (C(versions.driver)) until the next reboot after an install; C(none) when absent.
  returned: always
  type: str
  sample: "550.54.15"
processes_over_gpus:
  description: Whether the job's O(processes) are more than the GPUs nvidia-smi lists.
  returned: always
  type: bool
  version_added: 0.3.0
gpus:
  description: One entry per GPU that nvidia-smi lists (empty without a driver).
  returned: always
  type: list
  elements: dict
  sample: [{"index": 0, "name": "NVIDIA H200", "memory_mib": 143771, "driver": "550.54.15", "mig": "Disabled"}]
requirements_missing:
  description: Each of O(requirements) the venv does not satisfy, with what it has (C(numpy>=2 (1.26.4 installed)),
    C(einops (not installed))); empty when all are there.
  returned: always
  type: list
  elements: str
  version_added: 0.3.0
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils import stack
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import processes_over_gpus


def main():
    module = AnsibleModule(
        argument_spec={"venv": {"type": "path"}, "packages": {"type": "list", "elements": "str", "default": []},
                       "requirements": {"type": "list", "elements": "str", "default": []},
                       "runner": {"type": "list", "elements": "str", "default": []},
                       "processes": {"type": "int", "default": 0}},
        supports_check_mode=True,
    )
    params = module.params
    found = stack.read(module, params["venv"], params["runner"], params["packages"], params["requirements"])
    module.exit_json(changed=False, processes_over_gpus=processes_over_gpus(params["processes"], len(found["gpus"])), **found)


if __name__ == "__main__":
    main()
