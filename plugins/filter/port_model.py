# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port_model filter: the job's ports and what follows from them, in one place."""

from __future__ import annotations

DOCUMENTATION = r"""
name: port_model
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: The job's ports - master, collective range, check ports - and what follows from them
description:
  - Reads C(torchrun_master_port), C(torchrun_collective_port_range) and C(connectivity_probe_port)
    from O(_input) (a host's variables); the check port left unset is the range's first port. The
    health check uses the master port (it runs only while the job is stopped).
  - Returns every port as an integer and what the roles derive from them, so no role computes a port
    itself. The contract role exposes the result as C(__torchrun_ports).
options:
  _input:
    description: The host's variables (C(vars), which holds role defaults too) or a dict of the variables above.
    type: dict
    required: true
  jobs:
    description: The other jobs installed on the node (the C(jobs) of M(onprem.torchrun.node_probe)); their
      master ports are reserved too.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: The ports the firewall opens to the peers
  ansible.builtin.debug:
    msg: "{{ (vars | onprem.torchrun.port_model).open }}"
"""

RETURN = r"""
_value:
  description: C(master), C(probe) (ints), C(range) ([first, last]), C(span) (C(first-last)),
    C(open) (the ports the firewall opens to the peers, as strings), C(reserved) (sorted ports the kernel never
    hands out), C(sysctl) (the value of C(net.ipv4.ip_local_port_range)) and C(env) (the environment file's lines).
  type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils import ports


def port_model(values, jobs=None):
    """Return the port model of the variables in ``values`` (see DOCUMENTATION)."""
    if not isinstance(values, Mapping):
        raise AnsibleFilterError("port_model: expects the host's variables, got %s" % type(values).__name__)
    names = [p.var for p in ports.PORTS] + [ports.RANGE_VAR]
    try:
        picked = {name: values[name] for name in names if name in values}
        return ports.model(picked, jobs or [])
    except (KeyError, TypeError, ValueError) as error:
        raise AnsibleFilterError("port_model: %s must be set to port numbers (%s)" % (", ".join(names), error)) from error


class FilterModule:
    """onprem.torchrun filters for the job's ports."""

    def filters(self):
        return {"port_model": port_model}
