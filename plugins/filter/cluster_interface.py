# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster_interface filter: the network interface that carries a node's cluster address."""

from __future__ import annotations

DOCUMENTATION = r"""
name: cluster_interface
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: The interface that carries a node's cluster address
description:
  - Looks through the node's gathered network facts (O(_input) is C(ansible_facts)) for the
    interface that holds O(address) as a primary or secondary IPv4 or an IPv6 address.
  - The result is what C(GLOO_SOCKET_IFNAME) and C(NCCL_SOCKET_IFNAME) are pinned to, so a
    hostname that resolves to 127.0.1.1 or an unroutable docker/veth interface cannot be picked.
  - Fails naming the address when no interface carries it, when it is a loopback address, or
    when the interface that carries it is a container or virtual one (docker, veth, libvirt,
    CNI bridges), which is never the cluster network.
options:
  _input:
    description: The node's C(ansible_facts), gathered with at least the C(network) subset.
    type: dict
    required: true
  address:
    description: The node's cluster address.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show the cluster interface
  ansible.builtin.debug:
    msg: "{{ ansible_facts | onprem.torchrun.cluster_interface(torchrun_address) }}"
"""

RETURN = r"""
_value:
  description: The interface name, for example C(eth0) or C(host0).
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.interfaces import interface_of


def cluster_interface(facts, address):
    """Return the name of the interface that carries ``address``."""
    try:
        return interface_of(facts, address)
    except ValueError as error:
        raise AnsibleFilterError("cluster_interface: %s" % error) from None


class FilterModule:
    """onprem.torchrun filters for the cluster interface."""

    def filters(self):
        return {"cluster_interface": cluster_interface}
