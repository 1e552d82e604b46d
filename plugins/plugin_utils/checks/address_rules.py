# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses and peers: each node's cluster address, firewall_peers."""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible_collections.onprem.torchrun.plugins.module_utils.addresses import address_fault, address_of
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, Problem, problem, shown


def check_address(host: str, var: str, value: Any) -> tuple[str | None, Problem | None]:
    """The address in canonical form, or the problem with it (the rules: module_utils/addresses)."""
    address, fault = address_fault(var, value)
    return address, (problem(host, var, fault) if fault else None)


def addresses(c: Cluster) -> list[Problem]:
    """Each node's cluster address: an IP address of its own; firewall_peers only ever cluster nodes."""
    found = []
    for host in c.hosts:
        var, value = address_of(host, c.values[host])
        address, trouble = check_address(host, var, value)
        if trouble:
            found.append(trouble)
        else:
            c.addresses[host] = address
    by_address: dict[str, list[str]] = {}
    for host, address in c.addresses.items():
        by_address.setdefault(address, []).append(host)
    for address, hosts in by_address.items():
        if len(hosts) > 1:
            found.append(Problem(hosts[0], "torchrun_address", "%s: share the cluster address %s (torchrun_address / ansible_host); "
                                                               "each node needs its own" % (", ".join(hosts), address)))
    known = [c.addresses[h] for h in c.hosts if h in c.addresses]
    for host in c.hosts:
        peers = c.get(host, "firewall_peers")
        if peers is None:
            continue
        if len(peers) == 0:
            found.append(problem(host, "firewall_peers", "firewall_peers is empty; the job's own nodes could not reach it "
                                                         "(leave it unset for the cluster's addresses)"))
        for peer in peers:
            text = str(peer).strip()
            if "/" in text or text in ("0.0.0.0", "::", "any", "all"):
                found.append(problem(host, "firewall_peers", "firewall_peers holds %s, a network, not a node: it would open the job's "
                                                             "unauthenticated ports to every address in it; list cluster node "
                                                             "addresses only" % shown(peer)))
                continue
            try:
                canonical = str(ipaddress.ip_address(text))
            except ValueError:
                canonical = None
            if canonical not in known:
                found.append(problem(host, "firewall_peers", "firewall_peers holds %s, which is not a node of group %s (%s); only the "
                                                             "cluster's nodes may reach its ports" % (shown(peer), c.group, ", ".join(known))))
    return found
