# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's sockets, read from /proc: who listens on which port (process, user, unit), and how much of the
ephemeral range its connections hold. Read by the module node_probe."""

from __future__ import annotations

import os
import re

# The state of a listening TCP socket in /proc/net/tcp{,6}.
LISTEN = "0A"


def read(path: str) -> str:
    """A file's text, or "" when it cannot be read."""
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


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


def ephemeral_use(tables: list[str], low: int, high: int) -> dict:
    """The TCP sockets (not listening) holding a local port of the ephemeral range [low, high] now: how
    many, and the destination most of them go to (a program can hold about one connection per port
    to one destination address and port, so that count is what a narrower range must still fit)."""
    per_peer: dict[str, int] = {}
    total = 0
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] == LISTEN:
                continue
            port = int(fields[1].split(":")[1], 16)
            if not low <= port <= high:
                continue
            total += 1
            address, remote = fields[2].split(":")
            peer = "%s:%d" % (hex_address(address), int(remote, 16))
            per_peer[peer] = per_peer.get(peer, 0) + 1
    busiest = max(per_peer.items(), key=lambda kv: (kv[1], kv[0])) if per_peer else ("", 0)
    return {"range": [low, high], "total": total, "busiest_peer": busiest[0], "busiest": busiest[1]}


def read_ephemeral(proc: str = "/proc") -> dict:
    try:
        low, high = (int(p) for p in read(os.path.join(proc, "sys/net/ipv4/ip_local_port_range")).split())
    except ValueError:
        low, high = 32768, 60999
    return ephemeral_use([read(os.path.join(proc, "net", t)) for t in ("tcp", "tcp6")], low, high)


def unit_of(cgroup: str) -> str:
    """The systemd unit a process runs in, from its /proc/PID/cgroup text."""
    for line in cgroup.splitlines():
        path = line.split(":", 2)[-1]
        units = [part for part in path.split("/") if re.search(r"\.(service|scope)$", part)]
        if units:
            return units[-1]
    return ""


def socket_owners(proc: str = "/proc") -> dict[str, tuple[int, str, str, str, int | None]]:
    """Socket inode to (pid, process name, unit, executable, uid) over every process the module can see.

    The name (comm) is whatever the process chose; the executable (the /proc/PID/exe link) and the
    uid are the kernel's: they tell the real sshd from a process that only calls itself so."""
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
        try:
            exe = os.readlink(os.path.join(base, "exe"))
        except OSError:
            exe = ""
        try:
            uid = os.stat(base).st_uid
        except OSError:
            uid = None
        for inode in inodes:
            owners.setdefault(inode, (int(entry), name, unit, exe, uid))
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
        pid, name, unit, exe, uid = owners.get(inode, (0, "", "", "", None))
        entry = {"port": port, "address": address, "process": name, "pid": pid, "unit": unit, "exe": exe, "uid": uid}
        if entry not in found:
            found.append(entry)
    return sorted(found, key=lambda e: (e["port"], e["address"], e["pid"]))
