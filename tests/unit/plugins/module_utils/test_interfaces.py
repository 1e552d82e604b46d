"""The node's interfaces as node_probe reads them (ip -j addr), in the setup module's shape, and the cluster interface found in them."""

import json

import pytest
from ansible_collections.onprem.torchrun.plugins.module_utils import interfaces

IP = json.dumps([
    {"ifname": "lo", "flags": ["LOOPBACK", "UP"], "mtu": 65536, "address": "00:00:00:00:00:00",
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]},
    {"ifname": "host0", "flags": ["BROADCAST", "UP", "LOWER_UP"], "mtu": 9000, "address": "aa:bb:cc:00:00:11",
     "addr_info": [{"family": "inet", "local": "198.18.0.11", "prefixlen": 24, "broadcast": "198.18.0.255", "scope": "global"},
                   {"family": "inet", "local": "10.9.0.11", "prefixlen": 16, "scope": "global"},
                   {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]},
    {"ifname": "br-0a1b2c", "flags": ["UP"], "mtu": 1500, "addr_info": [{"family": "inet", "local": "172.18.0.1", "prefixlen": 16}]},
    {"ifname": "eth-cluster", "flags": [], "mtu": 1500, "addr_info": []},
])


def test_interfaces_read_from_ip_have_the_setup_modules_shape():
    facts = interfaces.facts_from_ip(IP)
    assert facts["interfaces"] == ["lo", "host0", "br-0a1b2c", "eth-cluster"]
    host0 = facts["host0"]
    assert host0["ipv4"] == {"address": "198.18.0.11", "prefix": "24", "netmask": "255.255.255.0", "network": "198.18.0.0",
                             "broadcast": "198.18.0.255"}
    assert [entry["address"] for entry in host0["ipv4_secondaries"]] == ["10.9.0.11"]
    assert host0["ipv6"] == [{"address": "fe80::1", "prefix": "64", "scope": "link"}]
    assert host0["mtu"] == 9000 and host0["active"] and host0["device"] == "host0"
    assert facts["eth_cluster"]["active"] is False and "ipv4" not in facts["eth_cluster"]  # a dash becomes _, as setup names it
    assert interfaces.facts_from_ip("not json") == {} and interfaces.facts_from_ip("") == {"interfaces": []}


@pytest.mark.parametrize(("address", "found"), [("198.18.0.11", "host0"), ("10.9.0.11", "host0")])
def test_the_cluster_interface_is_the_one_carrying_the_address(address, found):
    assert interfaces.interface_of(interfaces.facts_from_ip(IP), address) == found


@pytest.mark.parametrize(("address", "why"), [("127.0.0.1", "loopback"), ("172.18.0.1", "container or virtual"),
                                              ("198.18.0.99", "no interface"), ("node1", "not an IP address")])
def test_no_cluster_interface_says_why(address, why):
    with pytest.raises(ValueError, match=why):
        interfaces.interface_of(interfaces.facts_from_ip(IP), address)
