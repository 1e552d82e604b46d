# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the nvidia role installs on a node: the packages of the driver, its kernel modules, the
persistence daemon, the fabric manager, the CUDA toolkit, NCCL and the RDMA user space, by
distribution, release, driver branch and module flavour, as NVIDIA's driver installation guide
(release 580) and the distributions name them.

Compute-only nodes: the guide's headless sets, never the desktop meta-packages (cuda-drivers,
nvidia-open) that pull in X. From branch 590 NVIDIA's Ubuntu and Debian packages carry no branch
in their names (libnvidia-compute-580 becomes libnvidia-compute): the branch is then held by the
role's APT pin alone. The validator (plugin_utils.checks) and the nvidia_packages filter both plan
from here, so a choice a node cannot take is refused, naming the node, before anything is changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SOURCES = ("cuda_repo", "distro", "none")
FLAVOURS = ("auto", "open", "proprietary")
# NVIDIA's long-lived branch, the role's default; open modules are NVIDIA's own default from 560.
LONG_LIVED = "580"
OPEN_DEFAULT_FROM = 560
OPEN_FROM = 515  # the first production branch with the open kernel modules
BRANCHLESS_FROM = 590  # NVIDIA's APT packages drop the branch from their names
# PCI device IDs of NVIDIA GPUs before Turing (Volta, Pascal, Maxwell...) lie below 0x1e00: the
# open kernel modules do not drive them.
FIRST_TURING_ID = 0x1E00
# Debian's own driver: one branch per release (bookworm 535), so no pin and no branch choice.
DEBIAN_BRANCH = {"12": "535", "13": "550"}
RDMA = {"apt": ["rdma-core", "ibverbs-providers", "ibverbs-utils", "perftest", "infiniband-diags"]}
SUPPORTED = {"debian": ("12", "13"), "ubuntu": ("22.04", "24.04")}


@dataclass
class Plan:
    """The node's packages in install order (from NVIDIA's repository, the branch's as name=branch.*),
    the module flavour taken, the repository's distribution folder (debian12, ubuntu2404), whether
    the branch pin applies, and what cannot be planned (each (variable, message))."""

    packages: list[str] = field(default_factory=list)
    flavour: str = ""
    repo_distro: str = ""
    pinned: bool = False
    problems: list[tuple[str, str]] = field(default_factory=list)


def pre_turing(gpu_ids) -> list[str]:
    """The PCI device IDs (0x1db4...) of GPUs the open kernel modules do not drive."""
    old = []
    for value in gpu_ids or []:
        try:
            if int(str(value), 16) < FIRST_TURING_ID:
                old.append(str(value))
        except ValueError:
            continue
    return old


def flavour_for(choice: str, branch: int, gpu_ids=None) -> str:
    """The module flavour ``auto`` takes: open from branch 560 unless a GPU is older than Turing."""
    if choice != "auto":
        return choice
    return "open" if branch >= OPEN_DEFAULT_FROM and not pre_turing(gpu_ids) else "proprietary"


def kernel_flavour(kernel: str) -> str:
    """Ubuntu's kernel flavour (6.8.0-45-generic -> generic), which its prebuilt module packages name."""
    parts = (kernel or "").split("-")
    return "-".join(parts[2:]) if len(parts) > 2 else "generic"


def repo_distro(distro: str, version: str) -> str:
    """The folder of NVIDIA's CUDA repository for a release: debian12, ubuntu2204."""
    return distro + (version.split(".", maxsplit=1)[0] if distro == "debian" else version.replace(".", ""))


def plan(distro: str, version: str, kernel: str, settings: dict, gpu_ids=None, nvswitches: int = 0, rdma: bool = False) -> Plan:
    """The packages for a node of ``distro`` (os-release ID) ``version`` (VERSION_ID) running ``kernel``.

    ``settings`` holds the role's knobs: nvidia_driver_source, nvidia_driver_branch,
    nvidia_kernel_modules, nvidia_dkms, nvidia_persistenced, nvidia_fabricmanager, nvidia_cuda_toolkit
    and nvidia_nccl (defaults as in the role)."""
    get = settings.get
    distro = (distro or "").lower()
    version = str(version or "")
    source = get("nvidia_driver_source", "cuda_repo")
    choice = get("nvidia_kernel_modules", "auto")
    dkms = bool(get("nvidia_dkms", True))
    toolkit = str(get("nvidia_cuda_toolkit", "") or "")
    out = Plan(repo_distro=repo_distro(distro, version))
    release = version.split(".", maxsplit=1)[0] if distro == "debian" else version
    if release not in SUPPORTED.get(distro, ()):
        out.problems.append(("torchrun_group", "runs %s %s; the nvidia role installs on Debian %s and Ubuntu %s"
                             % (distro or "an unknown system", version, " and ".join(SUPPORTED["debian"]),
                                " and ".join(SUPPORTED["ubuntu"]))))
        return out
    if source == "distro" and distro == "debian":
        branch_text = DEBIAN_BRANCH.get(release, "")
    else:
        branch_text = str(get("nvidia_driver_branch", LONG_LIVED))
    if not re.match(r"\A[0-9]{3,4}\Z", branch_text):
        out.problems.append(("nvidia_driver_branch", "nvidia_driver_branch=%s must be a driver branch number such as %s" % (branch_text, LONG_LIVED)))
        return out
    branch = int(branch_text)
    flavour = flavour_for(choice, branch, gpu_ids)
    out.flavour = flavour if source != "none" else ""
    fabric = get("nvidia_fabricmanager", "auto")
    wants_fm = fabric == "always" or (fabric == "auto" and int(nvswitches or 0) > 0)
    if source != "none":
        if flavour == "open" and branch < OPEN_FROM:
            out.problems.append(("nvidia_kernel_modules", "nvidia_kernel_modules=open needs driver branch %d or later, not %d: "
                                                          "raise nvidia_driver_branch (%s is the long-lived one) or take proprietary"
                                 % (OPEN_FROM, branch, LONG_LIVED)))
        old = pre_turing(gpu_ids)
        if flavour == "open" and old:
            out.problems.append(("nvidia_kernel_modules", "nvidia_kernel_modules=open, but GPU(s) %s are older than Turing, which "
                                                          "the open kernel modules do not drive: use proprietary (or auto)" % ", ".join(old)))
        if not dkms and not (distro == "ubuntu" and source == "distro"):
            out.problems.append(("nvidia_dkms", "nvidia_dkms=false, but %s has no prebuilt NVIDIA modules from %s: keep DKMS, or on "
                                                "Ubuntu take its signed prebuilt modules (nvidia_driver_source=distro)"
                                 % (distro.capitalize(), "NVIDIA's repository" if source == "cuda_repo" else "the distribution")))
        if wants_fm and source == "distro" and distro == "debian":
            out.problems.append(("nvidia_fabricmanager", "this node has NVSwitch bridges and needs the fabric manager, which Debian "
                                                         "does not ship: use nvidia_driver_source=cuda_repo"))
        if dkms:
            out.packages.append("linux-headers-" + kernel)
        branch_packages = _driver(distro, source, branch, flavour, dkms, kernel)
        if get("nvidia_persistenced", True):
            branch_packages.append(_persistenced(distro, source, branch))
        if wants_fm:
            branch_packages.append(_named("nvidia-fabricmanager", branch))
        out.pinned = source == "cuda_repo"
        # From NVIDIA's repository each package of the branch is asked for as <name>=<branch>.*: a
        # node on another branch (the pin moved) is moved to this one, and one on it stays as it is.
        out.packages += ["%s=%d.*" % (name, branch) for name in branch_packages] if out.pinned else branch_packages
    toolkit_source = "distro" if toolkit == "distro" or source == "distro" else "cuda_repo"
    if toolkit:
        out.packages.append("nvidia-cuda-toolkit" if toolkit_source == "distro" else "cuda-toolkit-" + toolkit)
    if get("nvidia_nccl", False):
        out.packages += ["libnccl2", "libnccl-dev"]
    if rdma:
        out.packages += RDMA["apt"]
    return out


def _named(name: str, branch: int, suffix: str = "") -> str:
    """A package of NVIDIA's APT repository: the branch in its name up to 580, none from 590."""
    return name + suffix if branch >= BRANCHLESS_FROM else "%s-%d%s" % (name, branch, suffix)


def _driver(distro: str, source: str, branch: int, flavour: str, dkms: bool, kernel: str) -> list[str]:
    opened = flavour == "open"
    if source == "cuda_repo" and distro == "debian":
        return ["nvidia-driver-cuda", "nvidia-kernel-open-dkms" if opened else "nvidia-kernel-dkms"]
    if source == "cuda_repo":  # ubuntu
        return [_named("libnvidia-compute", branch), _named("nvidia-dkms", branch, "-open" if opened else ""), _named("nvidia-utils", branch)]
    if distro == "debian":
        return ["nvidia-open-kernel-dkms" if opened else "nvidia-kernel-dkms", "libcuda1", "nvidia-smi",
                "firmware-nvidia-gsp" if opened else "firmware-misc-nonfree"]
    suffix = "-server-open" if opened else "-server"
    if dkms:
        return ["nvidia-headless-%d%s" % (branch, suffix), "nvidia-utils-%d-server" % branch]
    return ["nvidia-headless-no-dkms-%d%s" % (branch, suffix), "nvidia-utils-%d-server" % branch,
            "linux-modules-nvidia-%d%s-%s" % (branch, suffix, kernel_flavour(kernel))]


def _persistenced(distro: str, source: str, branch: int) -> str:
    if distro == "debian":
        return "nvidia-persistenced"
    if source == "distro":
        return "nvidia-compute-utils-%d-server" % branch
    return _named("nvidia-compute-utils", branch)
