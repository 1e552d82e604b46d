# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCIe settings known to break or slow GPU peer-to-peer: ACS redirection on the PCIe switch ports
above the GPUs, and an IOMMU that translates DMA. Read from sysfs (config space, as root) on the node."""

from __future__ import annotations

import os

NVIDIA = "0x10de"
PCI_DEVICES = "/sys/bus/pci/devices"
GPU_CLASSES = ("0x0300", "0x0302")  # VGA compatible and 3D controllers
NVSWITCH_CLASSES = ("0x0680",)  # NVSwitch bridges: the node needs the fabric manager
PCI_EXPRESS_CAP = 0x10
ACS_EXT_CAP = 0x000D
DOWNSTREAM_PORT = 0x6  # PCIe port type of a switch's downstream port
ACS_REDIRECT = 0x0004 | 0x0008  # P2P Request Redirect, P2P Completion Redirect


def _read(path, binary=False):
    try:
        with open(path, "rb" if binary else "r") as handle:
            return handle.read() if binary else handle.read().strip()
    except OSError:
        return b"" if binary else ""


def nvidia_devices(classes, devices=PCI_DEVICES):
    """The NVIDIA PCI functions (their sysfs names) whose class begins with one of classes (sysfs: no
    lspci, no driver needed)."""
    try:
        entries = sorted(os.listdir(devices))
    except OSError:
        return []
    return [name for name in entries if _read(os.path.join(devices, name, "vendor")) == NVIDIA
            and _read(os.path.join(devices, name, "class"))[:6] in classes]


def device_id(name, devices=PCI_DEVICES):
    """A PCI function's device ID as sysfs writes it (0x2335)."""
    return _read(os.path.join(devices, name, "device"))


def _word(data, offset):
    return int.from_bytes(data[offset:offset + 2], "little") if len(data) >= offset + 2 else 0


def _dword(data, offset):
    return int.from_bytes(data[offset:offset + 4], "little") if len(data) >= offset + 4 else 0


def port_type(config):
    """The PCIe device/port type of a function's config space (None without a PCI Express capability)."""
    pointer, seen = config[0x34] if len(config) > 0x34 else 0, set()
    while pointer and pointer not in seen and pointer + 4 <= len(config):
        seen.add(pointer)
        if config[pointer] == PCI_EXPRESS_CAP:
            return (_word(config, pointer + 2) >> 4) & 0xF
        pointer = config[pointer + 1]
    return None


def acs_control(config):
    """The ACS Control register of a function's extended config space (None without ACS or when only
    the first 256 bytes could be read, as for a user other than root)."""
    offset, seen = 0x100, set()
    while offset and offset not in seen and offset + 8 <= len(config):
        seen.add(offset)
        header = _dword(config, offset)
        if header in (0, 0xFFFFFFFF):
            return None
        if header & 0xFFFF == ACS_EXT_CAP:
            return _word(config, offset + 6)
        offset = (header >> 20) & 0xFFC
    return None


def read(gpus, devices=PCI_DEVICES, cmdline="/proc/cmdline", iommu="/sys/class/iommu"):
    """{"acs_redirect": [switch ports above the GPUs (nvidia_devices(GPU_CLASSES)) that redirect
    peer-to-peer traffic], "iommu": whether an IOMMU is active, "iommu_passthrough": whether the
    kernel maps DMA 1:1 (iommu=pt)}."""
    redirecting = []
    for name in gpus:
        folder = os.path.join(devices, name)
        # The real path is the chain of bridges from the root complex down to the GPU.
        chain = os.path.realpath(folder).split(os.sep)
        for index, part in enumerate(chain[:-1]):
            if ":" not in part or part.startswith("pci"):
                continue
            bridge = os.sep.join(chain[:index + 1])
            config = _read(os.path.join(bridge, "config"), binary=True)
            control = acs_control(config)
            if port_type(config) == DOWNSTREAM_PORT and control is not None and control & ACS_REDIRECT and part not in redirecting:
                redirecting.append(part)
    arguments = _read(cmdline).split()
    active = bool(os.path.isdir(iommu) and os.listdir(iommu))
    return {"acs_redirect": redirecting, "iommu": active,
            "iommu_passthrough": "iommu=pt" in arguments or "intel_iommu=off" in arguments or "amd_iommu=off" in arguments}


def notes(found, gpus):
    """What to tell the operator (nothing is refused: a site may want ACS or an IOMMU for isolation)."""
    said = []
    if found.get("acs_redirect") and gpus > 1:
        said.append("PCIe ACS redirects peer-to-peer traffic on switch port(s) %s above the GPUs: GPU to GPU copies go "
                    "through the CPU's root complex (slower, or hangs with some switches); on bare metal disable ACS on "
                    "those ports (setpci, or the BIOS), as NCCL's troubleshooting guide advises" % ", ".join(found["acs_redirect"]))
    if found.get("iommu") and not found.get("iommu_passthrough") and gpus > 0:
        said.append("an IOMMU translates every DMA (no iommu=pt on the kernel command line): GPU peer-to-peer and GPUDirect "
                    "RDMA slow down or fail; add iommu=pt on bare metal")
    return said
