"""The GPU health gate's reading of nvidia-smi -q -x (the R535+ and the pre-Ampere formats) and of
the kernel log's Xid lines, on fixture documents in the formats the driver writes."""

import os

import pytest

from ansible_collections.onprem.torchrun.plugins.module_utils.gpu_health import assess, parse_smi, parse_xids

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "gpu_health")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


HGX = fixture("hgx_two_gpus.xml")


def second_gpu(xml, old, new):
    """The HGX document with one value of its second GPU (bus 2A) changed."""
    head, sep, tail = xml.partition('<gpu id="00000000:2A:00.0">')
    assert old in tail, old
    return head + sep + tail.replace(old, new, 1)


def test_a_healthy_node_passes_although_its_idle_links_run_at_gen_1():
    verdict = assess(HGX, "", processes=2)
    assert verdict["problems"] == [] and verdict["notes"] == []
    assert [(gpu["index"], gpu["pci"], gpu["name"]) for gpu in verdict["gpus"]] == [
        (0, "00000000:18:00.0", "NVIDIA H100 80GB HBM3"), (1, "00000000:2A:00.0", "NVIDIA H100 80GB HBM3")]


@pytest.mark.parametrize("old,new,problem", [
    ("<dram_uncorrectable>0</dram_uncorrectable>", "<dram_uncorrectable>4</dram_uncorrectable>",
     "uncorrectable ECC errors: 4 since the driver loaded, 0 in its life"),
    ("<sram_uncorrectable_secded>0</sram_uncorrectable_secded>\n\t\t\t\t<dram_correctable>3",
     "<sram_uncorrectable_secded>2</sram_uncorrectable_secded>\n\t\t\t\t<dram_correctable>3",
     "uncorrectable ECC errors: 0 since the driver loaded, 2 in its life"),
    ("<sram_threshold_exceeded>No", "<sram_threshold_exceeded>Yes", "SRAM correctable errors over the threshold"),
    ("<remapped_row_pending>No", "<remapped_row_pending>Yes", "a row remap is pending (reset the GPU or reboot the node)"),
    ("<remapped_row_failure>No", "<remapped_row_failure>Yes", "a row remap failed (the GPU needs service)"),
    ("<current_link_width>16x", "<current_link_width>8x", "PCIe link x8 of x16"),
    ("<max_link_gen>5", "<max_link_gen>4", "PCIe link gen 4 where the GPU does gen 5 (the slot or a riser)"),
    ("<state>Completed", "<state>In Progress", "NVSwitch fabric in progress (start nvidia-fabricmanager)"),
    ("<status>Success", "<status>Failure", "NVSwitch fabric status Failure"),
    ("<gpu_recovery_action>None", "<gpu_recovery_action>Drain and Reset", "the driver asks for recovery action Drain and Reset"),
])
def test_each_fault_names_the_gpu(old, new, problem):
    verdict = assess(second_gpu(HGX, old, new), "")
    assert len(verdict["problems"]) == 1, verdict["problems"]
    assert verdict["problems"][0].startswith("GPU 1 (00000000:2A:00.0): " + problem), verdict["problems"]
    assert verdict["gpus"][0]["problems"] == []


def test_the_pre_ampere_format_counts_double_bit_errors_and_pending_retirements():
    gpus = parse_smi(fixture("v100_double_bit.xml"))
    assert gpus[0]["problems"] == ["uncorrectable ECC errors: 2 since the driver loaded, 2 in its life",
                                   "a page retirement is pending (reboot the node)"]


def test_n_a_values_are_not_faults():
    xml = HGX.replace("<max_device_link_gen>5</max_device_link_gen>", "<max_device_link_gen>N/A</max_device_link_gen>")
    xml = xml.replace("<state>Completed</state>", "<state>N/A</state>").replace("<status>Success</status>", "<status>N/A</status>")
    xml = xml.replace("<dram_uncorrectable>0</dram_uncorrectable>", "<dram_uncorrectable>N/A</dram_uncorrectable>")
    assert assess(xml)["problems"] == []


def test_xids_are_matched_to_gpus_by_bus_and_only_hardware_ones_stop_a_launch():
    log = fixture("kernel.log")
    assert sorted(parse_xids(log)) == ["18:00", "2a:00", "c1:00"]
    verdict = assess(HGX, log)
    assert verdict["notes"] == ["GPU 0: Xid 13 since boot (an application's fault)"]
    assert verdict["problems"] == [
        "GPU 1 (00000000:2A:00.0): Xid 79 since boot (fell off the bus)",
        "GPU at c1:00 (not listed by nvidia-smi): Xid 48 since boot",
    ]


def test_fewer_gpus_than_processes():
    assert assess(HGX, "", processes=8)["problems"] == ["2 GPU(s) for 8 processes (torchrun_nproc_per_node)"]
    assert assess(HGX, "", processes=0)["problems"] == []


def test_a_node_without_gpus_reads_none():
    assert assess('<?xml version="1.0" ?><nvidia_smi_log><attached_gpus>0</attached_gpus></nvidia_smi_log>', "", 1)["problems"] == [
        "0 GPU(s) for 1 processes (torchrun_nproc_per_node)"]


def test_the_table_has_a_row_per_gpu_then_the_rest():
    from ansible_collections.onprem.torchrun.plugins.module_utils.gpu_health import table
    lines = table({"gpu01": assess(HGX, fixture("kernel.log"), 2), "gpu02": assess(HGX, "", 4)})
    assert [" ".join(line.split()) for line in lines] == [
        "node GPU PCI model health",
        "gpu01 0 00000000:18:00.0 NVIDIA H100 80GB HBM3 ok",
        "gpu01 1 00000000:2A:00.0 NVIDIA H100 80GB HBM3 Xid 79 since boot (fell off the bus)",
        "gpu02 0 00000000:18:00.0 NVIDIA H100 80GB HBM3 ok",
        "gpu02 1 00000000:2A:00.0 NVIDIA H100 80GB HBM3 ok",
        "gpu01: GPU at c1:00 (not listed by nvidia-smi): Xid 48 since boot",
        "gpu01: NOTE GPU 0: Xid 13 since boot (an application's fault)",
        "gpu02: 2 GPU(s) for 4 processes (torchrun_nproc_per_node)",
    ]


H200 = fixture("h200_vm.xml")  # captured with nvidia-smi -q -x on an H200 (driver 580.159.04) in a VM


def test_a_real_h200_reads_healthy_and_its_repair_fields_count():
    verdict = assess(H200, "", processes=1)
    assert verdict["problems"] == []
    assert [(gpu["index"], gpu["pci"], gpu["name"]) for gpu in verdict["gpus"]] == [(0, "00000000:00:06.0", "NVIDIA H200")]
    assert assess(H200, "", processes=2)["problems"] == ["1 GPU(s) for 2 processes (torchrun_nproc_per_node)"]
    broken = H200.replace("<unrepairable_memory>No", "<unrepairable_memory>Yes").replace("<tpc_repair_pending>No", "<tpc_repair_pending>Yes")
    assert assess(broken)["problems"] == ["GPU 0 (00000000:00:06.0): memory past repair (the GPU needs service)",
                                          "GPU 0 (00000000:00:06.0): a TPC repair is pending (reset the GPU or reboot the node)"]
    channel = H200.replace("<channel_repair_pending>No", "<channel_repair_pending>Yes")
    assert assess(channel)["problems"] == ["GPU 0 (00000000:00:06.0): a memory channel repair is pending (reset the GPU or reboot the node)"]


def test_a_failed_dcgm_test_is_a_problem_naming_the_gpu():
    from ansible_collections.onprem.torchrun.plugins.module_utils.gpu_health import parse_dcgm
    failed, note = parse_dcgm(fixture("dcgm_diag_fail.json"))
    assert note == "" and failed == ["DCGM diag Integration/PCIe failed on GPU 3: GPU 3 host-to-device bandwidth 2.1 GB/s is below the expected 12 GB/s"]
    assert assess(HGX, "", 2, fixture("dcgm_diag_fail.json"))["problems"] == failed
    assert assess(HGX, "", 2, '{"DCGM Diagnostic": {"test_categories": []}}')["problems"] == []
    assert parse_dcgm("Error: unable to connect to host engine") == (
        [], "dcgmi diag gave no report (is nv-hostengine running?): Error: unable to connect to host engine")
    assert assess(HGX, "", 2, "Error: unable to connect to host engine")["problems"] == []  # a note, not a refusal
