#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the health of a node's GPUs: ECC, row remaps, PCIe link, NVSwitch fabric, Xid events."""

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_health
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: The GPU health gate's reading of a node
description:
  - Runs C(nvidia-smi -q -x) and reads, per GPU, uncorrectable ECC errors (since the driver loaded and
    over the GPU's life), SRAM errors over their threshold, pending or failed row remaps, pending page
    retirements, a PCIe link narrower than its maximum or of a lower generation than the GPU does,
    the NVSwitch fabric's state and a recovery action the driver asks for.
  - Reads the kernel log since boot (C(journalctl -k -b), else C(dmesg)) for Xid events; those of
    failed hardware (ECC, row remapping, NVLink, a GPU off the bus, GSP) are problems, the others
    (an application's fault) notes.
  - Where DCGM is installed (C(dcgmi)), runs its quick diagnostic (C(dcgmi diag -r 1 -j), a few
    seconds) and counts each failed test as a problem; a node without DCGM is not asked.
  - The current PCIe generation is not compared, since GPUs lower it at idle to save power.
  - Reads only; changes nothing. Fails only when C(nvidia-smi) cannot be run or read; the
    verdict is in RV(problems), for the play to show in one table.
options:
  processes:
    description: The job's processes on the node; fewer GPUs than this is a problem (0 does not check).
    type: int
    default: 0
  dcgm:
    description: Run DCGM's quick diagnostic where C(dcgmi) is installed.
    type: bool
    default: true
extends_documentation_fragment:
  - onprem.torchrun.cluster.read_only
"""

EXAMPLES = r"""
- name: Read the GPUs' health
  onprem.torchrun.gpu_health:
    processes: 8
  register: health
"""

RETURN = r"""
gpus:
  description: One entry per GPU of C(nvidia-smi -q -x), with its problems.
  returned: always
  type: list
  elements: dict
  sample: [{"index": 0, "pci": "00000000:07:00.0", "name": "NVIDIA H200", "uuid": "GPU-5c1e...",
            "problems": ["PCIe link x8 of x16"]}]
problems:
  description: What stops a launch, each naming the GPU by index and PCI address; empty when healthy.
  returned: always
  type: list
  elements: str
  sample: ["GPU 0 (00000000:07:00.0): PCIe link x8 of x16"]
notes:
  description: What is shown but stops nothing (an application's Xid).
  returned: always
  type: list
  elements: str
  sample: ["GPU 3: Xid 13 since boot (an application's fault)"]
"""

import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils.gpu_health import assess


def kernel_log(module):
    """The kernel's messages since boot, '' when neither the journal nor dmesg answers."""
    for argv in (["journalctl", "-k", "-b", "--no-pager", "-o", "short-monotonic", "--grep", "NVRM: Xid"], ["dmesg"]):
        path = shutil.which(argv[0])
        if path:
            rc, out, _err = module.run_command([path] + argv[1:])
            # journalctl --grep exits 1 when nothing matched: an empty log, not a failure.
            if rc == 0 or (argv[0] == "journalctl" and rc == 1):
                return out
    return ""


def main():
    module = AnsibleModule(argument_spec={"processes": {"type": "int", "default": 0}, "dcgm": {"type": "bool", "default": True}},
                           supports_check_mode=True)
    smi = shutil.which("nvidia-smi")
    if not smi:
        module.fail_json(msg="nvidia-smi is not installed (the nvidia role installs the driver)")
    rc, out, err = module.run_command([smi, "-q", "-x"])
    if rc != 0:
        module.fail_json(msg="nvidia-smi -q -x failed (rc %d): %s" % (rc, (err or out).strip()[-400:]))
    dcgm_text = None
    dcgmi = shutil.which("dcgmi") if module.params["dcgm"] else None
    if dcgmi:
        rc, dcgm_out, dcgm_err = module.run_command([dcgmi, "diag", "-r", "1", "-j"])
        # dcgmi exits non-zero when a test fails; its JSON says which.
        dcgm_text = dcgm_out if "{" in dcgm_out else (dcgm_err or dcgm_out or "rc %d" % rc)
    try:
        verdict = assess(out, kernel_log(module), module.params["processes"], dcgm_text)
    except SyntaxError as error:  # xml.etree's ParseError: the XML of an odd driver
        module.fail_json(msg="cannot read nvidia-smi -q -x: %s" % error)
    module.exit_json(changed=False, **verdict)


if __name__ == "__main__":
    main()
