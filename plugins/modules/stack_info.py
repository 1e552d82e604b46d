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
"""

import json
import os
import re
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import processes_over_gpus

NONE = "none"

# Runs inside the venv; prints one JSON object. Reads package metadata and torch/version.py
# rather than importing torch (seconds per node at every launch); imports torch only for the
# NCCL version of a CUDA build that does not take NCCL from an nvidia-nccl-cu* distribution.
VENV_PROBE = r"""
import json, os, re, sys
from importlib import metadata, util
out = {"python": sys.version.split()[0], "torch_cuda": "none", "torch_nccl": "none"}
for name in ["torch", "lightning"] + sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = "none"
spec = util.find_spec("torch") if out["torch"] != "none" else None
if spec is not None and spec.origin:
    try:
        with open(os.path.join(os.path.dirname(spec.origin), "version.py"), encoding="utf-8") as handle:
            match = re.search(r"^cuda\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)['\"]", handle.read(), re.M)
        out["torch_cuda"] = match.group(1) if match else "none"
    except OSError:
        pass
    if out["torch_cuda"] != "none":
        nccl = [d.version for d in metadata.distributions() if (d.metadata["Name"] or "").lower().startswith("nvidia-nccl-cu")]
        if nccl:
            out["torch_nccl"] = nccl[0]
        else:
            try:
                import torch
                out["torch_nccl"] = ".".join(str(part) for part in torch.cuda.nccl.version())
            except Exception:
                pass
print(json.dumps(out))
"""


def driver_version(text):
    """The version in /proc/driver/nvidia/version, or none."""
    match = re.search(r"Kernel Module(?: for [\w]+)?\s+([0-9][0-9.]+)", text or "")
    return match.group(1) if match else NONE


def nvcc_version(text):
    """The full version in `nvcc --version` output (release 12.4, V12.4.131 -> 12.4.131), or none."""
    match = re.search(r"release [0-9.]+, V([0-9][0-9.]*)", text or "")
    return match.group(1) if match else NONE


def parse_gpus(text):
    """nvidia-smi --query-gpu=index,name,memory.total,driver_version,mig.mode.current csv lines."""
    gpus = []
    for line in (text or "").splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 5 or not fields[0].isdigit():
            continue
        memory = fields[2].split()[0]
        gpus.append({"index": int(fields[0]), "name": fields[1], "memory_mib": int(memory) if memory.isdigit() else memory,
                     "driver": fields[3], "mig": fields[4]})
    return gpus


def run(module, argv):
    """stdout of argv, or None when the program is missing or fails."""
    if not shutil.which(argv[0]) and not os.path.exists(argv[0]):
        return None
    rc, out, _err = module.run_command(argv)
    return out if rc == 0 else None


def system_nccl(module):
    out = run(module, ["dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", "libnccl2"])
    if out and out.startswith("installed "):
        return out.split(" ", 1)[1].strip()
    out = run(module, ["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", "libnccl"])
    return out.strip() if out else NONE


def main():
    module = AnsibleModule(
        argument_spec={"venv": {"type": "path"}, "packages": {"type": "list", "elements": "str", "default": []},
                       "runner": {"type": "list", "elements": "str", "default": []},
                       "processes": {"type": "int", "default": 0}},
        supports_check_mode=True,
    )
    versions = {}
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as handle:
            versions["driver"] = driver_version(handle.read())
    except OSError:
        versions["driver"] = NONE
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)
    versions["cuda_toolkit"] = nvcc_version(run(module, [nvcc, "--version"])) if nvcc else NONE
    versions["nccl_system"] = system_nccl(module)
    python = os.path.join(module.params["venv"], "bin", "python") if module.params["venv"] else None
    venv = {"python": NONE, "torch": NONE, "torch_cuda": NONE, "torch_nccl": NONE, "lightning": NONE}
    runner = module.params["runner"]
    if python and (runner or os.path.exists(python)):
        out = run(module, runner + [python, "-c", VENV_PROBE] + module.params["packages"])
        if out is None:
            where = " in %s" % runner[-1] if runner else ""
            module.fail_json(msg="%s%s could not report its packages; is the venv broken%s?" % (python, where, " or the image missing" if runner else ""))
        venv.update(json.loads(out))
    for name in ("python", "torch", "torch_cuda", "torch_nccl", "lightning"):
        versions[name] = venv.pop(name)
    versions.update(venv)
    smi = run(module, ["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version,mig.mode.current",
                       "--format=csv,noheader,nounits"])
    gpus = parse_gpus(smi)
    if versions["driver"] == NONE and gpus:
        # No /proc/driver/nvidia/version (a container's /proc): the loaded driver as NVML reports it.
        versions["driver"] = gpus[0]["driver"]
    installed = run(module, ["modinfo", "-F", "version", "nvidia"])
    module.exit_json(changed=False, versions=versions, driver_installed=(installed or "").strip() or NONE, gpus=gpus,
                     processes_over_gpus=processes_over_gpus(module.params["processes"], len(gpus)))


if __name__ == "__main__":
    main()
