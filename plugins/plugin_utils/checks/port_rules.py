# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ports: the master port, the collective range and the check ports, on each node."""

from __future__ import annotations

from ansible_collections.onprem.torchrun.plugins.module_utils import ports as port_model
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import MIN_COLLECTIVE_PORTS, PORT_MAX, PORT_MIN, Cluster, Problem, problem


def ports(c: Cluster) -> list[Problem]:
    """The master port, the collective range and the ports inside it; with node facts, who holds them."""
    host = c.master
    found = []
    port = c.cluster("torchrun_master_port")
    span = c.cluster(port_model.RANGE_VAR)
    if span is not None:
        if len(span) != 2 or not PORT_MIN <= span[0] <= span[1] <= PORT_MAX:
            found.append(problem(host, port_model.RANGE_VAR, "%s=%s must be [first, last] with %d <= first <= last <= %d"
                                 % (port_model.RANGE_VAR, span, PORT_MIN, PORT_MAX)))
            span = None
        elif span[1] - span[0] + 1 < MIN_COLLECTIVE_PORTS:
            found.append(problem(host, port_model.RANGE_VAR, "%s=%s holds fewer than %d ports; gloo and NCCL need one per connection"
                                 % (port_model.RANGE_VAR, span, MIN_COLLECTIVE_PORTS)))
    # Every port of the model: a port number; outside the range or inside it, as PORTS says.
    for entry in port_model.PORTS:
        value = c.cluster(entry.var)
        if value is None:
            continue
        if not PORT_MIN <= value <= PORT_MAX:
            found.append(problem(host, entry.var, "%s=%s must be a port from %d to %d" % (entry.var, value, PORT_MIN, PORT_MAX)))
            if entry.var == "torchrun_master_port":
                port = None
        elif span is None:
            continue
        elif entry.inside and not span[0] <= value <= span[1]:
            found.append(problem(host, entry.var, "%s=%s lies outside %s %s, which is the only range the firewall opens "
                                                  "to the peers; leave it unset (the range's first port)" % (entry.var, value, port_model.RANGE_VAR, span)))
        elif not entry.inside and span[0] <= value <= span[1]:
            found.append(problem(host, entry.var, "%s=%s lies inside %s %s; move one of them" % (entry.var, value, port_model.RANGE_VAR, span)))
    for node in c.hosts:
        for ssh in c.get(node, "firewall_ssh_ports") or []:
            if not 1 <= ssh <= PORT_MAX:
                found.append(problem(node, "firewall_ssh_ports", "firewall_ssh_ports holds %s, which is not a TCP port" % ssh))
    if c.facts is not None and span is not None:
        found += _node_ports(c, port, span)
    return found


def _node_ports(c: Cluster, port: int | None, span: list[int]) -> list[Problem]:
    found = []
    job = c.cluster("torchrun_job")
    master = c.node_facts(c.master) or {}
    for entry in master.get("listeners", []):
        if port is not None and entry.get("port") == port and entry.get("unit") != "torchrun-%s.service" % job:
            owner = entry.get("process") or "an unknown process"
            if entry.get("pid"):
                owner += " (pid %s%s)" % (entry["pid"], ", " + entry["unit"] if entry.get("unit") else "")
            found.append(problem(c.master, "torchrun_master_port", "torchrun_master_port=%s is in use on the master node by %s; "
                                                                   "stop it or choose another port" % (port, owner)))
    for node in c.hosts:
        facts = c.node_facts(node)
        if facts is None:
            continue
        ssh_ports = {int(c.get(node, "ansible_port") or 22)}
        ssh_ports |= set(facts.get("ssh_ports", []))
        for ssh in sorted(ssh_ports):
            if span[0] <= ssh <= span[1]:
                found.append(problem(node, "torchrun_collective_port_range", "SSH listens on port %s, inside torchrun_collective_port_range %s, "
                                     "which becomes the kernel's ephemeral range; move the range off it" % (ssh, span)))
        use = facts.get("ephemeral") or {}
        size = span[1] - span[0] + 1
        if use.get("busiest", 0) >= size:
            found.append(problem(node, "torchrun_collective_port_range", "%d connections to %s hold ephemeral ports on this node now, and "
                                 "torchrun_collective_port_range %s-%s (%d ports) becomes its whole ephemeral range, for every "
                                 "program: a program holds at most about one connection per port to one destination, so they "
                                 "would not fit; widen the range" % (use["busiest"], use.get("busiest_peer"), span[0], span[1], size)))
        for other in facts.get("jobs", []):
            if other.get("job") == job:
                continue
            other_port = other.get("master_port")
            if port is not None and other_port == port:
                found.append(problem(node, "torchrun_master_port", "torchrun_master_port=%s is already the port of job %s on this node; "
                                                                   "give each job its own port" % (port, other["job"])))
            if other.get("collective_port_range") and list(other["collective_port_range"]) != list(span):
                found.append(problem(node, "torchrun_collective_port_range", "torchrun_collective_port_range=%s differs from %s of job %s "
                                     "on this node; the kernel has one ephemeral range, so jobs on a node share it"
                                     % ("-".join(map(str, span)), "-".join(map(str, other["collective_port_range"])), other["job"])))
            if other_port is not None and span[0] <= other_port <= span[1]:
                found.append(problem(node, "torchrun_collective_port_range", "port %s of job %s lies inside torchrun_collective_port_range %s; "
                                                                             "move the range off it" % (other_port, other["job"], span)))
    return found
