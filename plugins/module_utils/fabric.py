# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The RDMA fabric of a node (InfiniBand or RoCE) and the NCCL environment it asks for.

read() runs on the node (node_probe) over the kernel's /sys/class/infiniband; nccl_plan() runs on
the controller (the fabric_plan filter, preflight's checks) over what read() returned, so the
unit, the health check and the checks take one answer.
"""

from __future__ import annotations

import ipaddress
import os
import re

SYSFS = "/sys/class/infiniband"
DEVICES = "/dev/infiniband"
MODES = ("auto", "rdma", "socket")
HCA = re.compile(r"\A[A-Za-z0-9_.-]{1,64}(?::[0-9]{1,3})?\Z")


def _read(path):
    """A sysfs attribute's text, '' when it is absent or cannot be read (an unset GID's type)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def ipv4_of_gid(gid):
    """The IPv4 address of an IPv4-mapped GID (::ffff:a.b.c.d), else ''."""
    try:
        address = ipaddress.IPv6Address(gid)
    except ValueError:
        return ""
    return str(address.ipv4_mapped) if address.ipv4_mapped else ""


def read(sysfs=SYSFS, devices=DEVICES):
    """The node's RDMA devices, their ports and RoCE v2 GIDs, and the character devices under
    /dev/infiniband: {"devices": [...], "char_devices": [...]}; empty lists without RDMA."""
    found = []
    for name in _listing(sysfs):
        base = os.path.join(sysfs, name)
        ports = []
        for port in _listing(os.path.join(base, "ports")):
            folder = os.path.join(base, "ports", port)
            roce_v2 = []
            for index in _listing(os.path.join(folder, "gids")):
                gid = _read(os.path.join(folder, "gids", index))
                kind = _read(os.path.join(folder, "gid_attrs", "types", index))
                if kind.lower() == "roce v2" and ipv4_of_gid(gid):
                    roce_v2.append({"index": int(index), "ipv4": ipv4_of_gid(gid),
                                    "ndev": _read(os.path.join(folder, "gid_attrs", "ndevs", index))})
            ports.append({
                "port": int(port) if port.isdigit() else port,
                "state": _read(os.path.join(folder, "state")).partition(":")[2].strip() or _read(os.path.join(folder, "state")),
                "phys_state": _read(os.path.join(folder, "phys_state")).partition(":")[2].strip(),
                "rate": _read(os.path.join(folder, "rate")),
                "link_layer": _read(os.path.join(folder, "link_layer")),
                "roce_v2": sorted(roce_v2, key=lambda entry: entry["index"]),
            })
        found.append({"name": name, "netdevs": _listing(os.path.join(base, "device", "net")),
                      "ports": sorted(ports, key=lambda entry: str(entry["port"]))})
    return {"devices": found, "char_devices": [os.path.join(devices, entry) for entry in _listing(devices)]}


def active_ports(fabric):
    """The ACTIVE ports as (device, port dict) pairs, in device order."""
    return [(device["name"], port) for device in (fabric or {}).get("devices", [])
            for port in device["ports"] if port["state"].upper() == "ACTIVE"]


def _chosen(ports, hcas):
    """The ports the user narrowed the list to (torchrun_fabric_hcas: mlx5_0 or mlx5_0:1), all without a list."""
    if not hcas:
        return ports
    return [(name, port) for name, port in ports if name in hcas or "%s:%s" % (name, port["port"]) in hcas]


def nccl_plan(fabric, mode="auto", hcas=(), address=""):
    """Whether the job uses RDMA, its NCCL environment and unit settings, and what is wrong.

    fabric: read()'s answer for the node; mode: torchrun_fabric; hcas: torchrun_fabric_hcas;
    address: the node's cluster address (the RoCE v2 GID carrying it is preferred). Returns
    {"rdma": bool, "env": {name: value}, "char_devices": [...], "unit_settings": [...],
     "ports": ["mlx5_0:1", ...], "link_layer": "InfiniBand"|"Ethernet"|"", "rate": "...", "problems": [...]}.
    unit_settings are what every process of the job needs on top of its hardening to use the
    ports (the job's unit drop-in, the health check and gpu-check all take them from here).
    """
    plan = {"rdma": False, "env": {}, "char_devices": [], "unit_settings": [], "ports": [], "link_layer": "", "rate": "",
            "problems": []}
    if mode == "socket":
        # NCCL would take an RDMA port it finds on its own; socket means sockets.
        plan["env"] = {"NCCL_IB_DISABLE": "1"}
        return plan
    ports = _chosen(active_ports(fabric), list(hcas))
    if not ports:
        if mode == "rdma":
            everything = ["%s:%s %s" % (device["name"], port["port"], port["state"] or "?")
                          for device in (fabric or {}).get("devices", []) for port in device["ports"]]
            plan["problems"].append("torchrun_fabric=rdma but the node has no ACTIVE RDMA port%s%s" % (
                " among torchrun_fabric_hcas=%s" % ",".join(hcas) if hcas else "",
                " (%s)" % ", ".join(everything) if everything else " (/sys/class/infiniband is empty: no HCA or no driver)"))
        return plan
    plan["rdma"] = True
    plan["ports"] = ["%s:%s" % (name, port["port"]) for name, port in ports]
    layers = sorted({port["link_layer"] for _name, port in ports})
    rates = sorted({port["rate"] for _name, port in ports})
    plan["link_layer"], plan["rate"] = "/".join(layers), "/".join(rates)
    if len(layers) > 1:
        plan["problems"].append("the RDMA ports mix link layers (%s); narrow torchrun_fabric_hcas to one kind"
                                % ", ".join("%s %s" % (p, port["link_layer"]) for p, (_name, port) in zip(plan["ports"], ports)))
    if not (fabric or {}).get("char_devices"):
        plan["problems"].append("no /dev/infiniband devices (load ib_uverbs and rdma_ucm)")
    # "=" makes NCCL match each name exactly: mlx5_1 alone would also take mlx5_10 .. mlx5_19.
    plan["env"]["NCCL_IB_HCA"] = "=" + ",".join(plan["ports"])
    roce = [(p, port) for p, (_name, port) in zip(plan["ports"], ports) if port["link_layer"].lower() == "ethernet"]
    indexes = {}
    for name, port in roce:
        entries = port["roce_v2"]
        mine = [entry for entry in entries if address and entry["ipv4"] == address] or entries
        if not mine:
            plan["problems"].append("%s is RoCE without an IPv4 RoCE v2 GID (give its interface an IPv4 address)" % name)
            continue
        indexes[name] = mine[0]["index"]
    if len(set(indexes.values())) > 1:
        plan["problems"].append("the IPv4 RoCE v2 GIDs sit at different indexes (%s); NCCL_IB_GID_INDEX is one number for every "
                                "port: set it in torchrun_env, or narrow torchrun_fabric_hcas"
                                % ", ".join("%s %d" % item for item in sorted(indexes.items())))
    elif indexes:
        plan["env"]["NCCL_IB_GID_INDEX"] = str(next(iter(indexes.values())))
    plan["char_devices"] = list(fabric["char_devices"])
    plan["unit_settings"] = unit_settings(plan["char_devices"])
    return plan


def unit_settings(char_devices):
    """systemd settings that let a hardened process (DevicePolicy=closed) use RDMA: no limit on the
    memory ibv_reg_mr pins for NCCL's buffers, and the /dev/infiniband devices, read-write."""
    return ["LimitMEMLOCK=infinity"] + ["DeviceAllow=%s rw" % device for device in char_devices]


def cluster_problems(plans):
    """What differs between the nodes' RDMA ports: {node: problem}. plans: {node: nccl_plan()}."""
    rdma = {node: plan for node, plan in plans.items() if plan["rdma"]}
    problems = {}
    if not rdma:
        return problems
    for node in sorted(set(plans) - set(rdma)):
        problems[node] = "no ACTIVE RDMA port where %s have them (NCCL would fall back to sockets for the whole job)" % ", ".join(sorted(rdma))
    for key, what in (("ports", "number of RDMA ports"), ("link_layer", "link layer"), ("rate", "port rate")):
        values = {node: (len(plan[key]) if key == "ports" else plan[key]) for node, plan in rdma.items()}
        # The most common value; on a tie the first node's (the master's: plans come in rank order).
        common = max(list(values.values()), key=list(values.values()).count)
        for node, value in sorted(values.items()):
            if value != common and node not in problems:
                problems[node] = "%s %s where the others have %s" % (what, value, common)
    return problems
