# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job's ports, in one place: which there are, where each lies, and what follows from them.

A job has a master port (the rendezvous store on the master node; the health check's store too,
while the job is stopped) and a collective range (the ports gloo and NCCL listen on, which becomes
the kernel's ephemeral range). The connectivity check listens on a port of its own inside that range. Everything else is derived here: the ports the firewall
opens to the peers, the ports the kernel must never hand out, the sysctl value, the lines of the
job's environment file and reading them back. The contract role exposes the result as
__torchrun_ports (filter onprem.torchrun.port_model); preflight checks the same PORTS.

A new port is one more entry in PORTS (and its variable in the owning role's argument spec).
"""

from __future__ import annotations

import re
from collections import namedtuple

PORT_MIN, PORT_MAX = 1024, 65535
MIN_COLLECTIVE_PORTS = 256

# name: key in the model; var: the variable that sets it; inside: whether it must lie in the
# collective range (unset: the range's first port); env: its line in <job>.env (or None).
Port = namedtuple("Port", "name var inside env")
PORTS = (
    Port("master", "torchrun_master_port", False, "TORCHRUN_MASTER_PORT"),
    Port("probe", "connectivity_probe_port", True, None),
)
RANGE_VAR, RANGE_ENV = "torchrun_collective_port_range", "TORCHRUN_COLLECTIVE_PORT_RANGE"


def model(values: dict, jobs=()) -> dict:
    """The port model from the variables in ``values`` (PORTS' vars and RANGE_VAR), as ints.

    ``jobs``: the other jobs on the node (node_probe's installed_jobs); their master ports are
    reserved too. Returns one key per port, ``range`` [first, last], ``span`` ("first-last"),
    ``open`` (what the firewall opens to the peers), ``reserved`` (sorted, never ephemeral),
    ``sysctl`` (net.ipv4.ip_local_port_range) and ``env`` (the environment file's lines).
    """
    first, last = (int(p) for p in values[RANGE_VAR])
    out = {"range": [first, last], "span": "%d-%d" % (first, last)}
    for port in PORTS:
        value = values.get(port.var)
        out[port.name] = first if port.inside and value in (None, "") else int(value)
    outside = [out[p.name] for p in PORTS if not p.inside]
    others = [int(j["master_port"]) for j in jobs if j.get("master_port") is not None]
    out["open"] = [str(p) for p in outside] + [out["span"]]
    out["reserved"] = sorted(set(outside + [out[p.name] for p in PORTS if p.inside] + others))
    out["sysctl"] = "%d %d" % (first, last)
    out["env"] = ["%s=%s" % (p.env, out[p.name]) for p in PORTS if p.env] + ["%s=%s" % (RANGE_ENV, out["span"])]
    return out


def from_env(values: dict) -> dict:
    """A job's ports read back from its environment file's assignments (None where unreadable)."""
    found = {}
    for port in PORTS:
        if port.env:
            text = values.get(port.env, "")
            found[port.name + "_port"] = int(text) if text.isdigit() else None
    span = re.fullmatch(r"([0-9]+)-([0-9]+)", values.get(RANGE_ENV, ""))
    found["collective_port_range"] = [int(span.group(1)), int(span.group(2))] if span else None
    return found
