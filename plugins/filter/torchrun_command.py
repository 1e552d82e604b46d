# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The torchrun_command filter: how torchrun runs on a node, in one place."""

from __future__ import annotations

DOCUMENTATION = r"""
name: torchrun_command
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: The torchrun argv and the workers' environment for one node
description:
  - Returns the torchrun command line (without the script) and the environment its workers need,
    for the static or the c10d rendezvous. The job's unit (launcher role) and the health check
    both take their command from it, so a rendezvous flag, the interface variables or the rank
    variables to unset are defined once.
  - Static - C(--rdzv-backend=static) with the node rank and the master's address and port, and
    C(--rdzv-conf=timeout=) (the store's wait for every node; torchrun's own default is 900 s).
  - c10d - C(--rdzv-endpoint) (an IPv6 address in brackets) and C(--rdzv-conf) with the join,
    last-call, close and read timeouts, plus C(is_host=1) on the endpoint's own node only.
  - standalone - one host alone (C(--standalone)), as C(playbooks/gpu_check.yml) runs NCCL on a GPU
    host; only O(_input.venv) and O(_input.nproc_per_node) are needed, the interface variables are set
    when O(_input.interface) is given.
options:
  _input:
    description: The node's settings.
    type: dict
    required: true
    suboptions:
      venv:
        description: The virtual environment holding torchrun.
        type: str
        required: true
      nproc_per_node:
        description: C(--nproc-per-node) (a number, C(gpu) or C(auto)).
        type: str
        required: true
      backend:
        description: The rendezvous, C(static), C(c10d) or C(standalone) (one host).
        type: str
        default: static
      nnodes:
        description: C(--nnodes), a count or C(MIN:MAX).
        type: str
        required: true
      node_rank:
        description: This node's rank (static only).
        type: int
      master_addr:
        description: The master's (static) or rendezvous endpoint's (c10d) address.
        type: str
        required: true
      master_port:
        description: Its port.
        type: int
        required: true
      local_addr:
        description: This node's cluster address (C(--local-addr)).
        type: str
        required: true
      interface:
        description: The cluster interface, for gloo and NCCL.
        type: str
        required: true
      max_restarts:
        description: C(--max-restarts).
        type: int
        default: 0
      join_timeout:
        description: Seconds the rendezvous waits for every node.
        type: int
        default: 600
      last_call_timeout:
        description: c10d's last-call timeout.
        type: int
        default: 30
      close_timeout:
        description: c10d's close timeout.
        type: int
        default: 30
      read_timeout:
        description: c10d's read timeout.
        type: int
        default: 60
      is_host:
        description: Whether this node hosts the c10d rendezvous store.
        type: bool
        default: false
      rank_lines:
        description:
          - >-
            Tee every worker's output (C(--tee=3)) with its global rank in front of each line
            (C([rank<N>]: ), through C(TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE)), so the node's journal can
            be split by rank (the filter P(onprem.torchrun.rank_logs#filter)). torchrun also writes the
            workers' output to files in its log folder (a temporary folder unless C(--log-dir) is given).
        type: bool
        default: false
"""

EXAMPLES = r"""
- name: The job's command on this node
  ansible.builtin.debug:
    msg: >-
      {{ {'venv': '/opt/torchrun/venv', 'nproc_per_node': '2', 'nnodes': '2', 'node_rank': 0,
          'master_addr': '10.0.0.1', 'master_port': 29500, 'local_addr': '10.0.0.1', 'interface': 'eth1'}
         | onprem.torchrun.torchrun_command }}
"""

RETURN = r"""
_value:
  description: C(argv) (the torchrun command line, without the script), C(env) (the workers' environment),
    C(assignments) (the same as sorted C(NAME=value) lines
    for an environment file, a value with other than letters, digits and C(_./:=,@+-) single-quoted) and C(unset) (the variables torchrun sets itself, which
    nothing may pre-set).
  type: dict
"""

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import RANK_LINE_TEMPLATE, RANK_VARIABLES

PLAIN = re.compile(r"^[A-Za-z0-9_./:=,@+-]*$")


def assignment(name, value):
    """One line of a systemd environment file: single quotes keep $, spaces and brackets literal."""
    value = str(value)
    if PLAIN.match(value):
        return "%s=%s" % (name, value)
    if "'" in value or "\\" in value or "\n" in value:
        raise AnsibleFilterError("torchrun_command: %s=%r cannot be written to an environment file" % (name, value))
    return "%s='%s'" % (name, value)


def flag(node, key):
    """A yes/no setting as Ansible may hand it over (a bool, or a string typed with -e)."""
    return node.get(key) in (True, "true", "True", "yes", 1)


def result(argv, env):
    return {"argv": argv, "env": env, "assignments": [assignment(*item) for item in sorted(env.items())], "unset": list(RANK_VARIABLES)}


def torchrun_command(node):
    """Return argv, env and unset for one node (see DOCUMENTATION)."""
    if not isinstance(node, dict):
        raise AnsibleFilterError("torchrun_command: expects a dict of the node's settings, got %s" % type(node).__name__)
    backend = str(node.get("backend", "static"))
    needed = ("venv", "nproc_per_node") if backend == "standalone" else \
        ("venv", "nproc_per_node", "nnodes", "master_addr", "master_port", "local_addr", "interface")
    missing = [key for key in needed if node.get(key) in (None, "")]
    if backend == "static" and node.get("node_rank") in (None, ""):
        missing.append("node_rank")
    if missing:
        raise AnsibleFilterError("torchrun_command: missing %s" % ", ".join(missing))
    argv = ["%s/bin/torchrun" % str(node["venv"]).rstrip("/"), "--nproc-per-node=%s" % node["nproc_per_node"]]
    env = {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    if flag(node, "rank_lines"):
        argv.append("--tee=3")
        env["TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE"] = RANK_LINE_TEMPLATE
    if node.get("interface") not in (None, ""):
        interface = str(node["interface"])
        env["GLOO_SOCKET_IFNAME"] = interface
        # "=": NCCL takes exactly this interface, not every one whose name begins with it (eth1 is not eth10).
        env["NCCL_SOCKET_IFNAME"] = "=" + interface
    if backend == "standalone":
        argv += ["--standalone", "--max-restarts=%d" % int(node.get("max_restarts", 0))]
        return result(argv, env)
    master, port = str(node["master_addr"]), int(node["master_port"])
    join = int(node.get("join_timeout", 600))
    if backend == "static":
        argv += ["--rdzv-backend=static", "--nnodes=%s" % node["nnodes"], "--node-rank=%d" % int(node["node_rank"]),
                 "--master-addr=%s" % master, "--master-port=%d" % port, "--rdzv-conf=timeout=%d" % join]
    elif backend == "c10d":
        conf = ["join_timeout=%d" % join, "last_call_timeout=%d" % int(node.get("last_call_timeout", 30)),
                "close_timeout=%d" % int(node.get("close_timeout", 30)), "read_timeout=%d" % int(node.get("read_timeout", 60))]
        if flag(node, "is_host"):
            conf.append("is_host=1")
        endpoint = "[%s]" % master if ":" in master else master
        argv += ["--rdzv-backend=c10d", "--nnodes=%s" % node["nnodes"], "--rdzv-endpoint=%s:%d" % (endpoint, port),
                 "--rdzv-conf=" + ",".join(conf)]
    else:
        raise AnsibleFilterError("torchrun_command: backend %r is neither static, c10d nor standalone" % backend)
    argv += ["--local-addr=%s" % node["local_addr"], "--max-restarts=%d" % int(node.get("max_restarts", 0))]
    return result(argv, env)


class FilterModule:
    """onprem.torchrun filters for the torchrun command."""

    def filters(self):
        return {"torchrun_command": torchrun_command}
