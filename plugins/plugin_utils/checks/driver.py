# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NVIDIA driver a node can take (node stage, torchrun_accelerator=cuda): the nvidia role's package
plan for the node's release, branch, module flavour and GPUs (plugin_utils.driver_plan), and Secure
Boot, which loads no module DKMS built unless its key is an enrolled Machine Owner Key."""

from __future__ import annotations

from ansible_collections.onprem.torchrun.plugins.plugin_utils import driver_plan
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import DRIVER_BRANCH, Cluster, Problem, problem

SETTINGS = ("nvidia_driver_source", "nvidia_driver_branch", "nvidia_kernel_modules", "nvidia_dkms", "nvidia_persistenced",
            "nvidia_fabricmanager", "nvidia_cuda_toolkit", "nvidia_nccl")


def secure_boot_problem(host: str, source: str, dkms: bool, state: dict) -> Problem | None:
    """Secure Boot on, a DKMS-built module to come and DKMS's key not enrolled: the module would not load."""
    if source == "none" or not dkms or (state or {}).get("state") != "enabled" or (state or {}).get("dkms_key_enrolled"):
        return None
    return problem(host, "nvidia_dkms", "Secure Boot is on and nvidia_dkms=true builds the NVIDIA kernel modules with DKMS, whose "
                                        "signing key (/var/lib/dkms/mok.pub) is not an enrolled Machine Owner Key, so the kernel "
                                        "would not load the driver. Enroll it (mokutil --import /var/lib/dkms/mok.pub, then confirm "
                                        "at the next boot), or use signed prebuilt modules (Ubuntu: nvidia_driver_source=distro "
                                        "with nvidia_dkms=false), or turn Secure Boot off in the firmware")


def nvidia_driver(c: Cluster) -> list[Problem]:
    """Each node's driver plan and Secure Boot, from what node_probe read (nothing without node facts)."""
    if c.cluster("torchrun_accelerator") != "cuda" or c.facts is None:
        return []
    found = []
    for host in c.hosts:
        facts = c.node_facts(host)
        branch = c.get(host, "nvidia_driver_branch")
        if not facts or "os_id" not in facts or facts.get("package_manager") != "apt" or (branch is not None and not DRIVER_BRANCH.match(str(branch))):
            continue  # what node_probe did not read, a node refused for its package manager, a branch refused already
        settings = {name: c.get(host, name) for name in SETTINGS if c.get(host, name) is not None}
        plan = driver_plan.plan(facts["os_id"].get("id", ""), facts["os_id"].get("version", ""), "", settings,
                                gpu_ids=facts.get("gpu_ids") or [], nvswitches=facts.get("nvswitches") or 0)
        found += [problem(host, var, message) for var, message in plan.problems]
        secure = secure_boot_problem(host, settings.get("nvidia_driver_source", "cuda_repo"), bool(settings.get("nvidia_dkms", True)),
                                     facts.get("secure_boot") or {})
        if secure:
            found.append(secure)
    return found
