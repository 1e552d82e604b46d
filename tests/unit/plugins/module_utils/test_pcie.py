"""PCIe settings that slow GPU peer-to-peer, on sysfs trees laid out as the kernel's: the chain of
bridges in a GPU's real path, each function's config space (PCI Express capability, ACS extended
capability), the IOMMU class and the kernel command line."""

import os

from ansible_collections.onprem.torchrun.plugins.module_utils import pcie


def config(port_type, acs_control=None):
    """A function's config space: a PCI Express capability at 0x40 with the port type, and an ACS
    extended capability at 0x100 with its control register when given (4096 bytes, as root reads it)."""
    data = bytearray(4096)
    data[0x34] = 0x40
    data[0x40], data[0x41] = 0x10, 0x00  # PCI Express capability, last in the list
    data[0x42:0x44] = ((port_type << 4) | 0x2).to_bytes(2, "little")
    if acs_control is not None:
        data[0x100:0x104] = (0x000D | (1 << 16)).to_bytes(4, "little")  # ACS, version 1, no next
        data[0x106:0x108] = acs_control.to_bytes(2, "little")
    return bytes(data)


def tree(tmp_path, acs=0x001D, iommu=True, cmdline="BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet"):
    """Root port 00:01.0 -> switch upstream 01:00.0 -> downstream 02:08.0 -> GPU 03:00.0, and a NIC."""
    root = tmp_path / "devices" / "pci0000:00"
    chain = [("0000:00:01.0", config(0x4, 0x001D)), ("0000:01:00.0", config(0x5)), ("0000:02:08.0", config(0x6, acs))]
    folder = root
    for name, data in chain:
        folder = folder / name
        folder.mkdir(parents=True)
        (folder / "config").write_bytes(data)
        (folder / "vendor").write_text("0x10b5\n")
        (folder / "class").write_text("0x060400\n")
    gpu = folder / "0000:03:00.0"
    gpu.mkdir()
    (gpu / "vendor").write_text("0x10de\n")
    (gpu / "class").write_text("0x030200\n")
    nic = root / "0000:00:02.0"
    nic.mkdir()
    (nic / "vendor").write_text("0x15b3\n")
    (nic / "class").write_text("0x020700\n")
    bus = tmp_path / "bus"
    bus.mkdir()
    for device in (gpu, nic):
        os.symlink(device, bus / device.name)
    (tmp_path / "iommu").mkdir()
    if iommu:
        (tmp_path / "iommu" / "dmar0").mkdir()
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    gpus = pcie.nvidia_devices(pcie.GPU_CLASSES, str(bus))
    assert gpus == ["0000:03:00.0"]  # the NIC is not NVIDIA's
    return pcie.read(gpus, str(bus), str(tmp_path / "cmdline"), str(tmp_path / "iommu"))


def test_acs_redirect_on_the_switch_port_above_a_gpu_and_a_translating_iommu(tmp_path):
    found = tree(tmp_path)
    # The root port's ACS is as it should be; the switch's downstream port redirects peer-to-peer.
    assert found == {"acs_redirect": ["0000:02:08.0"], "iommu": True, "iommu_passthrough": False}
    said = pcie.notes(found, gpus=8)
    assert said[0].startswith("PCIe ACS redirects peer-to-peer traffic on switch port(s) 0000:02:08.0 above the GPUs")
    assert said[1].startswith("an IOMMU translates every DMA (no iommu=pt on the kernel command line)")


def test_a_clean_node_says_nothing(tmp_path):
    found = tree(tmp_path, acs=0x0001, cmdline="root=/dev/sda1 intel_iommu=on iommu=pt")  # source validation only
    assert found == {"acs_redirect": [], "iommu": True, "iommu_passthrough": True}
    assert pcie.notes(found, gpus=8) == []
    (tmp_path / "one").mkdir()
    assert pcie.notes(tree(tmp_path / "one", iommu=False), gpus=1) == []  # one GPU: no peer to talk to


def test_config_space_a_user_cannot_read_whole_shows_no_acs():
    assert pcie.acs_control(config(0x6, 0x001D)[:256]) is None  # only root reads past 256 bytes
    assert pcie.acs_control(config(0x6, 0x001D)) == 0x001D and pcie.port_type(config(0x6)) == 0x6
    assert pcie.port_type(bytes(64)) is None
