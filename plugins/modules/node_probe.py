#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what preflight checks on a node before anything changes: listeners, GPUs, preset variables."""

from __future__ import annotations

DOCUMENTATION = r"""
module: node_probe
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: What the preflight checks need to know about a node, read without changing it
description:
  - Lists the TCP sockets listening on the node, each with the process, PID and systemd unit that
    holds it (from C(/proc/net/tcp), C(/proc/net/tcp6) and the processes' file descriptors), so a
    port in use can be named together with its owner.
  - Counts the NVIDIA GPUs on the PCI bus (C(/sys/bus/pci/devices)), which needs no driver, so the
    count is known before the nvidia role installs one. NVSwitches and other non-display NVIDIA
    functions are not counted.
  - Finds variables that torchrun sets for every worker (C(NODE_RANK), C(MASTER_ADDR)...) when
    something on the node pre-sets them, in the systemd manager's environment, which every unit
    inherits, and C(/etc/environment), which login shells read.
  - Tells whether a file exists on the node (the training script, when it lives there).
options:
  names:
    description: Environment variable names to look for.
    type: list
    elements: str
    default: [NODE_RANK, RANK, LOCAL_RANK, GROUP_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT]
  path:
    description: A file whose existence to report in RV(path_exists). Empty reports C(true).
    type: str
    default: ""
extends_documentation_fragment:
  - onprem.torchrun.cluster.read_only
"""

EXAMPLES = r"""
- name: Read the node
  onprem.torchrun.node_probe:
    path: /srv/train/train.py
  register: probe
"""

RETURN = r"""
listeners:
  description: The node's listening TCP sockets (IPv4 and IPv6), one entry per port and owner.
  returned: always
  type: list
  elements: dict
  sample: [{"port": 22, "address": "0.0.0.0", "process": "sshd", "pid": 210, "unit": "ssh.service"}]
gpus:
  description: NVIDIA GPUs (PCI display and 3D controllers of vendor 0x10de) on the node.
  returned: always
  type: int
  sample: 8
preset:
  description: Each watched variable that is pre-set, with where and its value.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "NODE_RANK", "value": "0", "where": "the systemd manager environment"}]
path_exists:
  description: Whether O(path) is a file on the node.
  returned: always
  type: bool
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

LISTEN = "0A"
NVIDIA = "0x10de"
GPU_CLASSES = ("0x0300", "0x0302")  # VGA compatible and 3D controllers; NVSwitch is 0x0680
MANAGER = "the systemd manager environment (systemctl show-environment)"
ETC_ENVIRONMENT = "/etc/environment"


def hex_address(text: str) -> str:
    """The address of a /proc/net/tcp{,6} field, in the usual notation."""
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return ".".join(str(b) for b in reversed(raw))
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
    groups = [(w[j] << 8) | w[j + 1] for w in words for j in (0, 2)]
    return ":".join("%x" % g for g in groups)


def listening_sockets(table: str) -> dict[str, tuple[str, int]]:
    """Socket inode to (address, port) for the LISTEN lines of a /proc/net/tcp{,6} table."""
    found = {}
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == LISTEN:
            address, port = fields[1].split(":")
            found[fields[9]] = (hex_address(address), int(port, 16))
    return found


def unit_of(cgroup: str) -> str:
    """The systemd unit a process runs in, from its /proc/PID/cgroup text."""
    for line in cgroup.splitlines():
        path = line.split(":", 2)[-1]
        units = [part for part in path.split("/") if re.search(r"\.(service|scope)$", part)]
        if units:
            return units[-1]
    return ""


def socket_owners(proc: str = "/proc") -> dict[str, tuple[int, str, str]]:
    """Socket inode to (pid, process name, unit) over every process the module can see."""
    owners = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        base = os.path.join(proc, entry)
        try:
            fds = os.listdir(os.path.join(base, "fd"))
        except OSError:
            continue
        inodes = []
        for fd in fds:
            try:
                target = os.readlink(os.path.join(base, "fd", fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.append(target[8:-1])
        if not inodes:
            continue
        try:
            with open(os.path.join(base, "comm")) as comm, open(os.path.join(base, "cgroup")) as cgroup:
                name, unit = comm.read().strip(), unit_of(cgroup.read())
        except OSError:
            continue
        for inode in inodes:
            owners.setdefault(inode, (int(entry), name, unit))
    return owners


def listeners(proc: str = "/proc") -> list[dict]:
    sockets = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc, "net", table)) as handle:
                sockets.update(listening_sockets(handle.read()))
        except OSError:
            continue
    owners = socket_owners(proc)
    found = []
    for inode, (address, port) in sockets.items():
        pid, name, unit = owners.get(inode, (0, "", ""))
        entry = {"port": port, "address": address, "process": name, "pid": pid, "unit": unit}
        if entry not in found:
            found.append(entry)
    return sorted(found, key=lambda e: (e["port"], e["address"], e["pid"]))


def gpu_count(devices: str = "/sys/bus/pci/devices") -> int:
    count = 0
    try:
        entries = os.listdir(devices)
    except OSError:
        return 0
    for entry in entries:
        try:
            with open(os.path.join(devices, entry, "vendor")) as vendor, open(os.path.join(devices, entry, "class")) as cls:
                if vendor.read().strip() == NVIDIA and cls.read().strip()[:6] in GPU_CLASSES:
                    count += 1
        except OSError:
            continue
    return count


def assignments(text: str) -> dict[str, str]:
    """NAME=value lines (optionally `export`ed, optionally quoted), as /etc/environment holds them."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            found[match.group(1)] = value
    return found


def preset(names: list[str], manager: str, etc_environment: str) -> list[dict]:
    found = []
    for where, text in ((MANAGER, manager), (ETC_ENVIRONMENT, etc_environment)):
        values = assignments(text)
        found += [{"name": name, "value": values[name], "where": where} for name in names if name in values]
    return found


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str",
                      "default": ["NODE_RANK", "RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                  "MASTER_ADDR", "MASTER_PORT"]},
            "path": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    manager = ""
    systemctl = module.get_bin_path("systemctl")
    if systemctl:
        rc, out, _err = module.run_command([systemctl, "show-environment"])
        manager = out if rc == 0 else ""
    try:
        with open(ETC_ENVIRONMENT) as handle:
            etc_environment = handle.read()
    except OSError:
        etc_environment = ""
    path = module.params["path"]
    module.exit_json(
        changed=False,
        listeners=listeners(),
        gpus=gpu_count(),
        preset=preset(module.params["names"], manager, etc_environment),
        path_exists=not path or os.path.isfile(path),
    )


if __name__ == "__main__":
    main()
