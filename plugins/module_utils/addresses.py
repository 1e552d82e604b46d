# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's cluster address: which variable gives it, and whether the other nodes can reach it.

The validator (plugin_utils/checks, area address_rules) reports a bad address with the others of
the run; the filter onprem.torchrun.cluster_addresses stops at the first. Both read these rules.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def address_of(host: str, hvars: Any) -> tuple[str, Any]:
    """Which variable gives a host its cluster address, and its value."""
    for var in ("torchrun_address", "ansible_host"):
        if hvars.get(var) not in (None, ""):
            return var, hvars[var]
    return "inventory name", host


def address_fault(var: str, value: Any) -> tuple[str | None, str | None]:
    """(the address in canonical form, None), or (None, what is wrong with it and the fix)."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None, "%s=%r is not an IP address; set torchrun_address to the node's address on the cluster network" % (var, value)
    for trap, why in ((address.is_loopback, "a loopback address"), (address.is_unspecified, "the any-address"),
                      (address.is_multicast, "a multicast address"), (address.is_link_local, "a link-local address")):
        if trap:
            return None, ("%s=%s is %s, which the other nodes cannot reach; set torchrun_address to the node's address on the "
                          "cluster network" % (var, address, why))
    if address.version == 6:
        return None, ("%s=%s is an IPv6 address; the collection's firewall rules, peer sets and connectivity probes are "
                      "IPv4-only for now, so the job's store would not be guarded: give the node's IPv4 cluster address "
                      "(torchrun_address)" % (var, address))
    return str(address), None
