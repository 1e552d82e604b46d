# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU health gate's reading of ``nvidia-smi -q -x`` and of the kernel log's Xid events.

Pure functions over text, shared by the module gpu_health (on the node) and its unit tests
(captured XML). Each GPU gets a list of problems; a problem is a short sentence an operator acts on.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from ansible_collections.onprem.torchrun.plugins.module_utils.table import aligned
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import processes_over_gpus

# Xid events that mean the hardware (memory, bus, NVLink, the GPU's own processors) failed, not the
# application: NVIDIA's Xid catalogue. Others (13, 31, 43, 45: a program's fault or its end) are
# reported as notes and do not stop a launch.
HARDWARE_XIDS = {
    48: "double-bit ECC error", 61: "internal micro-controller breakpoint", 62: "internal micro-controller halt",
    63: "row remapping event", 64: "row remapping failure", 74: "NVLink error", 79: "fell off the bus",
    92: "high single-bit ECC rate", 94: "contained ECC error", 95: "uncontained ECC error",
    119: "GSP RPC timeout", 120: "GSP error", 140: "unrecovered ECC error",
}

XID = re.compile(r"NVRM: Xid \(PCI:([0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)\): (\d+)")

NOT_AVAILABLE = ("", "n/a", "not available", "[n/a]", "[not supported]", "not supported", "unknown error")


def _text(element, path):
    """The stripped text at path under element, '' when absent."""
    found = element.find(path) if element is not None else None
    return (found.text or "").strip() if found is not None else ""


def _number(text):
    """A count nvidia-smi printed, or None for N/A and the like."""
    text = text.strip()
    if text.lower() in NOT_AVAILABLE:
        return None
    match = re.match(r"^(\d+)", text)
    return int(match.group(1)) if match else None


def _pci_key(bus_id):
    """A PCI bus id in one spelling: nvidia-smi writes 00000000:07:00.0, the kernel 0000:07:00."""
    match = re.search(r"([0-9A-Fa-f]{2}):([0-9A-Fa-f]{2})(?:\.([0-7]))?$", bus_id.strip())
    if not match:
        return bus_id.strip().lower()
    return ("%s:%s" % (match.group(1), match.group(2))).lower()


def _uncorrectable(gpu):
    """Uncorrectable ECC errors since the driver loaded (volatile) and over the GPU's life (aggregate).

    Ampere and later write sram_uncorrectable(_parity, _secded) and dram_uncorrectable, each its own
    count; earlier GPUs write double_bit/total.
    """
    totals = {}
    for scope in ("volatile", "aggregate"):
        node = gpu.find("ecc_errors/%s" % scope)
        if node is None:
            continue
        counts = [_number(child.text or "") for child in node if "uncorrectable" in child.tag]
        counts.append(_number(_text(node, "double_bit/total")))
        totals[scope] = sum(count for count in counts if count is not None)
    return totals


def parse_smi(xml_text):
    """The GPUs of an ``nvidia-smi -q -x`` document: a list of dicts, each with its problems."""
    root = ET.fromstring(xml_text)
    gpus = []
    for position, gpu in enumerate(root.findall("gpu")):
        bus = gpu.get("id", "")
        index = _number(_text(gpu, "minor_number"))
        entry = {
            "index": position if index is None else index,
            "pci": bus,
            "name": _text(gpu, "product_name"),
            "uuid": _text(gpu, "uuid"),
            "problems": [],
        }
        problems = entry["problems"]
        ecc = _uncorrectable(gpu)
        if ecc.get("volatile") or ecc.get("aggregate"):
            problems.append("uncorrectable ECC errors: %d since the driver loaded, %d in its life"
                            % (ecc.get("volatile", 0), ecc.get("aggregate", 0)))
        if _text(gpu, "ecc_errors/aggregate/sram_threshold_exceeded").lower() == "yes":
            problems.append("SRAM correctable errors over the threshold (the GPU needs service)")
        if _text(gpu, "remapped_rows/remapped_row_pending").lower() in ("yes", "true"):
            problems.append("a row remap is pending (reset the GPU or reboot the node)")
        if _text(gpu, "remapped_rows/remapped_row_failure").lower() in ("yes", "true"):
            problems.append("a row remap failed (the GPU needs service)")
        # R575 and later: memory and TPC repairs that wait for a reset, memory past repair.
        if _text(gpu, "ecc_errors/unrepairable_memory").lower() == "yes":
            problems.append("memory past repair (the GPU needs service)")
        for tag, what in (("channel", "memory channel"), ("tpc", "TPC")):
            if _text(gpu, "ecc_errors/%s_repair_pending" % tag).lower() == "yes":
                problems.append("a %s repair is pending (reset the GPU or reboot the node)" % what)
        if _text(gpu, "retired_pages/pending_retirement").lower() in ("yes", "true"):
            problems.append("a page retirement is pending (reboot the node)")
        link = gpu.find("pci/pci_gpu_link_info")
        if link is not None:
            width, widest = _number(_text(link, "link_widths/current_link_width")), _number(_text(link, "link_widths/max_link_width"))
            if width is not None and widest is not None and width < widest:
                problems.append("PCIe link x%d of x%d" % (width, widest))
            # The current generation drops at idle to save power; the link's maximum (what the slot and
            # the GPU agreed on) below the device's own maximum is the fault.
            gen = _number(_text(link, "pcie_gen/max_link_gen"))
            device_gen = _number(_text(link, "pcie_gen/max_device_link_gen"))
            if gen is not None and device_gen is not None and gen < device_gen:
                problems.append("PCIe link gen %d where the GPU does gen %d (the slot or a riser)" % (gen, device_gen))
        state, status = _text(gpu, "fabric/state"), _text(gpu, "fabric/status")
        if state and state.lower() not in NOT_AVAILABLE and state.lower() != "completed":
            problems.append("NVSwitch fabric %s (start nvidia-fabricmanager)" % state.lower())
        elif status and status.lower() not in NOT_AVAILABLE and status.lower() != "success":
            problems.append("NVSwitch fabric status %s (nvidia-fabricmanager's log)" % status)
        action = _text(gpu, "gpu_recovery_action")
        if action and action.lower() not in NOT_AVAILABLE and action.lower() != "none":
            problems.append("the driver asks for recovery action %s" % action)
        gpus.append(entry)
    return gpus


def parse_xids(log_text):
    """Xid events of a kernel log: {pci key: [(xid, line), ...]} in the order they came."""
    events = {}
    for line in log_text.splitlines():
        match = XID.search(line)
        if match:
            events.setdefault(_pci_key(match.group(1)), []).append((int(match.group(2)), line.strip()))
    return events


def assess(xml_text, log_text="", processes=0, dcgm_text=None):
    """The gate's verdict on one node: its GPUs (with the Xids joined in), its problems and its notes.

    A problem stops a launch; a note (an application's Xid) is shown. processes is the job's
    process count on the node (0: not checked); dcgm_text what ``dcgmi diag -r 1 -j`` printed, if it ran.
    """
    gpus = parse_smi(xml_text)
    xids = parse_xids(log_text)
    notes = []
    for gpu in gpus:
        seen = xids.pop(_pci_key(gpu["pci"]), [])
        hardware = sorted({xid for xid, _line in seen if xid in HARDWARE_XIDS})
        if hardware:
            named = "; ".join(HARDWARE_XIDS[x] for x in hardware)
            gpu["problems"].append("Xid %s since boot (%s)" % (", ".join(str(x) for x in hardware), named))
        others = sorted({xid for xid, _line in seen if xid not in HARDWARE_XIDS})
        if others:
            notes.append("GPU %s: Xid %s since boot (an application's fault)" % (gpu["index"], ", ".join(str(x) for x in others)))
    problems = ["GPU %s (%s): %s" % (gpu["index"], gpu["pci"], problem) for gpu in gpus for problem in gpu["problems"]]
    for bus, seen in sorted(xids.items()):
        hardware = sorted({xid for xid, _line in seen if xid in HARDWARE_XIDS})
        if hardware:
            # A GPU the driver no longer lists (79: it fell off the bus) still counts.
            problems.append("GPU at %s (not listed by nvidia-smi): Xid %s since boot" % (bus, ", ".join(str(x) for x in hardware)))
    if dcgm_text is not None:
        failed, note = parse_dcgm(dcgm_text)
        problems += failed
        notes += [note] if note else []
    if processes_over_gpus(processes, len(gpus)):
        problems.append("%d GPU(s) for %d processes (torchrun_nproc_per_node)" % (len(gpus), processes))
    return {"gpus": gpus, "problems": problems, "notes": notes}


def table(verdicts):
    """The gate's report on the controller: {node: assess()} as aligned lines, a row per GPU
    (healthy or its problems), then the problems not tied to a listed GPU, then the notes."""
    rows = [["node", "GPU", "PCI", "model", "health"]]
    extra = []
    for node, verdict in verdicts.items():
        for gpu in verdict.get("gpus", []):
            rows.append([node, str(gpu["index"]), gpu["pci"], gpu["name"], "; ".join(gpu["problems"]) or "ok"])
        listed = {"GPU %s (%s): %s" % (gpu["index"], gpu["pci"], text) for gpu in verdict.get("gpus", []) for text in gpu["problems"]}
        extra += ["%s: %s" % (node, text) for text in verdict.get("problems", []) if text not in listed]
        extra += ["%s: NOTE %s" % (node, text) for text in verdict.get("notes", [])]
    return aligned(rows) + extra


def parse_dcgm(text):
    """The failed tests of ``dcgmi diag -r 1 -j`` (DCGM's JSON: test_categories -> tests -> results),
    as sentences naming the test and the GPU, and a note when DCGM gave no report (its host engine
    not running, say): ([failed, ...], note)."""
    try:
        document = json.loads(text[text.find("{"):text.rfind("}") + 1] if "{" in text else text)
    except ValueError:
        return [], "dcgmi diag gave no report (is nv-hostengine running?): %s" % " ".join(text.split())[:200]
    diag = document.get("DCGM Diagnostic", document) if isinstance(document, dict) else {}
    failed = []
    for category in diag.get("test_categories", []) if isinstance(diag, dict) else []:
        for test in category.get("tests", []):
            for result in test.get("results", []):
                if str(result.get("status", "")).lower() != "fail":
                    continue
                where = "GPU %s" % result["gpu_id"] if "gpu_id" in result else "the node"
                why = result.get("warnings") or result.get("info") or ""
                if isinstance(why, list):
                    why = "; ".join(str(item.get("warning", item)) if isinstance(item, dict) else str(item) for item in why)
                said = ": " + " ".join(str(why).split())[:300] if why else ""
                failed.append("DCGM diag %s/%s failed on %s%s" % (category.get("category", "?"), test.get("name", "?"), where, said))
    return failed, ""
