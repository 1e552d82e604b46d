# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's network interfaces, and the one that carries its cluster address.

The filter onprem.torchrun.cluster_interface finds the interface in gathered facts; node_probe reads
the interfaces itself (``ip -j addr``) in the shape the setup module's network facts have, so that a
launch needs no fact gathering of its own, and finds the interface with the same rule.
"""

from __future__ import annotations

import ipaddress
import json
import re

# Interfaces that never carry the cluster network: loopback, container and virtual ones.
NOT_CLUSTER = re.compile(r"^(lo|docker\d*|veth.*|virbr\d*|br-[0-9a-f]+|cni\d*|flannel.*|cali.*|vxlan.*|tun\d*|tap\d*)$")


def _addresses(info):
    ipv4 = info.get("ipv4") or {}
    if isinstance(ipv4, dict):
        yield ipv4.get("address")
    for extra in info.get("ipv4_secondaries") or []:
        yield extra.get("address")
    for extra in info.get("ipv6") or []:
        yield extra.get("address")


def interface_of(facts, address):
    """The name of the interface in ``facts`` (network facts) that carries ``address``; ValueError says why none does."""
    try:
        wanted = ipaddress.ip_address(str(address))
    except ValueError:
        raise ValueError("%r is not an IP address" % (address,)) from None
    if wanted.is_loopback:
        raise ValueError("%s is a loopback address, not a cluster address" % wanted)
    names = facts.get("interfaces") or []
    for name in sorted(names):
        info = facts.get(name.replace("-", "_")) or facts.get(name) or {}
        for found in _addresses(info):
            if found and ipaddress.ip_address(found.split("%")[0]) == wanted:
                device = info.get("device", name)
                if NOT_CLUSTER.match(device):
                    raise ValueError("%s is on %s, a container or virtual interface, not the cluster network" % (wanted, device))
                return device
    raise ValueError("no interface of %s carries %s (interfaces: %s)"
                     % (facts.get("hostname", "this host"), wanted, ", ".join(sorted(names)) or "none gathered"))


def facts_from_ip(text):
    """``ip -j addr`` output as the setup module's network facts have it (the keys the collection reads):
    ``interfaces`` and, per interface, device, active, mtu, macaddress, ipv4, ipv4_secondaries, ipv6."""
    try:
        links = json.loads(text or "[]")
    except ValueError:
        return {}
    facts = {"interfaces": []}
    for link in links if isinstance(links, list) else []:
        name = link.get("ifname")
        if not name:
            continue
        info = {"device": name, "active": "UP" in (link.get("flags") or []), "mtu": link.get("mtu"),
                "macaddress": link.get("address", ""), "ipv4_secondaries": [], "ipv6": []}
        for addr in link.get("addr_info") or []:
            if addr.get("family") == "inet":
                net = ipaddress.ip_interface("%s/%s" % (addr.get("local"), addr.get("prefixlen")))
                entry = {"address": str(net.ip), "prefix": str(net.network.prefixlen), "netmask": str(net.netmask),
                         "network": str(net.network.network_address), "broadcast": addr.get("broadcast", "")}
                if "ipv4" in info:
                    info["ipv4_secondaries"].append(entry)
                else:
                    info["ipv4"] = entry
            elif addr.get("family") == "inet6":
                info["ipv6"].append({"address": addr.get("local"), "prefix": str(addr.get("prefixlen")), "scope": addr.get("scope", "")})
        facts["interfaces"].append(name)
        facts[name.replace("-", "_")] = info
    return facts


def read(module):
    """The node's network facts (facts_from_ip), or {} where ``ip`` is missing or fails."""
    ip = module.get_bin_path("ip")
    if not ip:
        return {}
    rc, out, _err = module.run_command([ip, "-j", "addr", "show"])
    return facts_from_ip(out) if rc == 0 else {}
