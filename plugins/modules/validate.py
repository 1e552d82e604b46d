#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the validate action plugin (plugins/action/validate.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: validate
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: Check every setting of the training group, on the controller, before any node is touched
description:
  - Runs on the controller only and never contacts a node. Reads every host of the training
    group from C(hostvars) and, for each variable that a role of the collection declares in its
    C(meta/argument_specs.yml), takes the host's own value (inventory, group, host or extra
    vars) or else that role's default from C(defaults/main.yml), rendered with the host's
    variables.
  - Converts each value to its declared type the way C(-e key=value) strings convert, and
    refuses what does not convert, naming the host, the variable and the fix.
  - Then checks, one area at a time, names and paths (job, user, table grammar; reserved job
    names), the consistency of cluster-wide settings between hosts, ports, addresses and
    firewall peers, process counts and GPUs, the rendezvous, the job's account, the firewall,
    the sources of the NVIDIA and Python stacks, and the job as the trust boundary (inventory and
    group names by their grammar, SSH ports that are never the job's, a Python environment root
    runs only where root alone writes).
  - With O(facts), the node stage also checks what M(onprem.torchrun.node_probe) read on each
    node (listeners, GPUs, pre-set rank variables, the script, other jobs, the account, the
    firewall managers and nftables tables, links planted where root sets owners, a job of the same
    name installed by another cluster, a c10d store in the collective range another job shares).
  - Fails with one report of every problem found, or returns them in RV(problems).
options:
  group:
    description: The inventory group of the training nodes (C(torchrun_group)).
    type: str
    required: true
  facts:
    description:
      - Name of the variable each host registered from M(onprem.torchrun.node_probe). Empty checks
        the inventory only.
    type: str
    default: ""
  fail:
    description: Fail when a problem is found (else only return them).
    type: bool
    default: true
  whole_group:
    description:
      - Also refuse a play that does not hold every node of the group (C(--limit), a narrower host
        pattern), naming the nodes left out. For plays that start, stop or change the job on all nodes
        at once (launch, health check, setup, stop), whose nodes would otherwise wait their whole join
        timeout or hang on their peers.
    type: bool
    default: false
  partial_var:
    description:
      - With O(whole_group), the setting (such as C(job_partial)) whose value true lets the play run on
        part of the group. Empty allows no part (launch, health check).
    type: str
    default: ""
    version_added: 0.2.0
  areas:
    description:
      - Check only these areas (the validator's functions, such as C(ownership)); empty checks every area.
        The types of the values are always checked.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
attributes:
  action:
    description: The work is done by an action plugin on the controller.
    support: full
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Returns no diff; it changes nothing.
    support: none
seealso:
  - module: onprem.torchrun.node_probe
"""

EXAMPLES = r"""
- name: Check the inventory of the training group before anything runs on a node
  onprem.torchrun.validate:
    group: "{{ torchrun_group }}"
  run_once: true

- name: Refuse a launch that leaves out nodes of the group
  onprem.torchrun.validate:
    group: "{{ torchrun_group }}"
    whole_group: true
  run_once: true

- name: Check what the nodes hold
  onprem.torchrun.validate:
    group: "{{ torchrun_group }}"
    facts: __preflight_node
  run_once: true
"""

RETURN = r"""
notes:
  description:
    - With O(facts) and no problem, what the run will change that the operator should know (each a line
      starting C(WARNING <node>)), such as the listening services C(firewall_mode=strict) cuts off.
  returned: always
  type: list
  elements: str
  version_added: 0.2.0
problems:
  description: Every problem found, each with the host, the variable and the line printed.
  returned: always
  type: list
  elements: dict
  sample: [{"host": "node1", "var": "torchrun_master_port", "message": "node1: torchrun_master_port=70000 must be a port from 1024 to 65535"}]
hosts:
  description: The hosts of the group, in rank order.
  returned: always
  type: list
  elements: str
addresses:
  description: Each host's cluster address (null where it was refused).
  returned: always
  type: list
  elements: str
validated_before:
  description:
    - True when every setting had passed earlier in the same play (setup.yml's own check, then the validate role as
      every role's dependency) and was not read again; a check with O(whole_group), O(facts) or O(areas) always reads.
  returned: when true
  type: bool
  version_added: 0.3.0
"""
