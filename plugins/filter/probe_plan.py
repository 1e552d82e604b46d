# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe_plan filter: which endpoints a node connects to in the connectivity check."""

from __future__ import annotations

DOCUMENTATION = r"""
name: probe_plan
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: The endpoints one node probes in the cluster connectivity check
description:
  - Returns the master's rendezvous port (unless O(_input) is the master) followed by the probe
    port of every other node, as targets for M(onprem.torchrun.tcp_probe).
options:
  _input:
    description: The probing node's inventory name.
    type: str
    required: true
  hosts:
    description: The ordered training group; the first host is the master.
    type: list
    elements: str
    required: true
  addresses:
    description: The cluster addresses of O(hosts), in the same order.
    type: list
    elements: str
    required: true
  master_port:
    description: The rendezvous port on the master.
    type: int
    required: true
  probe_port:
    description: The collective-range port every node listens on during the check.
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Show what node2 probes
  ansible.builtin.debug:
    msg: "{{ 'node2' | onprem.torchrun.probe_plan(['node1', 'node2'], ['10.0.0.1', '10.0.0.2'], 29500, 52000) }}"
"""

RETURN = r"""
_value:
  description: Targets with C(name), C(host) and C(port).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError


def probe_plan(me, hosts, addresses, master_port, probe_port):
    """Return the targets ``me`` connects to: the master port, then each peer's probe port."""
    hosts, addresses = list(hosts), list(addresses)
    if len(hosts) != len(addresses) or not hosts:
        raise AnsibleFilterError("probe_plan: %d host(s) but %d address(es)" % (len(hosts), len(addresses)))
    targets = []
    if me != hosts[0]:
        targets.append({"name": hosts[0], "host": addresses[0], "port": int(master_port)})
    targets += [{"name": h, "host": a, "port": int(probe_port)} for h, a in zip(hosts, addresses) if h != me]
    return targets


class FilterModule:
    """onprem.torchrun filters for the connectivity check."""

    def filters(self):
        return {"probe_plan": probe_plan}
