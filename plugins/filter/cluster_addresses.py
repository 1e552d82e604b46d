# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster_addresses filter: each training node's address on the cluster network."""

from __future__ import annotations

DOCUMENTATION = r"""
name: cluster_addresses
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: Each training node's IP address on the cluster network
description:
  - For every host of O(_input), in order, returns its C(torchrun_address) host variable, or
    its C(ansible_host) when that is not set, or else its inventory name.
  - Fails with a message naming the host and the variable when the result is not an IP
    address, since torchrun, gloo and the firewall all need the address itself. A name is
    refused rather than resolved, since names are where nodes disagree (a node's own name mapped to
    127.0.1.1 in /etc/hosts, split DNS), so the master address is the same literal on every node.
  - Fails the same way for a loopback, any-address (0.0.0.0, ::), multicast or link-local
    address, which no other node can reach, and for an IPv6 address, which the collection's
    firewall rules do not cover yet. The rules are the validator's (M(onprem.torchrun.validate)).
extends_documentation_fragment:
  - onprem.torchrun.cluster
"""

EXAMPLES = r"""
- name: List the cluster addresses
  ansible.builtin.debug:
    msg: "{{ groups['trainers'] | onprem.torchrun.cluster_addresses(hostvars) }}"
"""

RETURN = r"""
_value:
  description: The addresses, in the order of the hosts.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.addresses import address_fault, address_of


def cluster_addresses(hosts, hostvars):
    """Return the cluster address of each host, refusing anything that is not an IP address.

    The rules are the validator's (plugins/module_utils/addresses.py), which has checked them for
    every host before; here the first problem stops the play.
    """
    addresses = []
    for host in hosts:
        var, value = address_of(host, hostvars[host])
        address, fault = address_fault(var, value)
        if fault:
            raise AnsibleFilterError("%s: %s" % (host, fault))
        addresses.append(address)
    return addresses


class FilterModule:
    """onprem.torchrun filters for cluster addresses."""

    def filters(self):
        return {"cluster_addresses": cluster_addresses}
