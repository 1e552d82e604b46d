# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall: the backend, the mode and allow-list, and the notes preflight prints."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible_collections.onprem.torchrun.plugins.module_utils import ports as port_model
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import PORT_MAX, TABLE_PATTERN, Cluster, Problem, problem, shown


def firewall(c: Cluster) -> list[Problem]:
    """The firewall manager each node runs, and the nftables table: only ever one of our own."""
    found = []
    for node in c.hosts:
        facts = c.node_facts(node)
        backend = c.get(node, "firewall_backend")
        if facts is None or backend is None:
            continue
        active = list(facts.get("firewall_active", []))
        if backend == "auto" and len(active) > 1:
            found.append(problem(node, "firewall_backend", "%s are both active (firewall_backend=auto cannot choose); stop one, or set "
                                                           "firewall_backend to the one that guards this node" % " and ".join(active)))
        elif backend in ("firewalld", "ufw") and backend not in active:
            found.append(problem(node, "firewall_backend", "firewall_backend=%s but %s is not active on the node; the collection never "
                                                           "turns a firewall manager on: start it, or use auto" % (backend, backend)))
        elif backend == "nftables" and active:
            found.append(problem(node, "firewall_backend", "firewall_backend=nftables but %s is active, whose rules would still drop the "
                                                           "job's traffic; use auto or %s" % (" and ".join(active), active[0])))
        chosen = _chosen_backend(backend, active)
        found += _site_manager(node, chosen, facts.get("firewall_site") or {})
        table = c.get(node, "firewall_table")
        if chosen == "nftables" and table and TABLE_PATTERN.match(table):
            existing = set(facts.get("nft_tables", []))
            ours = set(facts.get("nft_own_tables", []))
            if "inet " + table in existing and table not in ours:
                found.append(problem(node, "firewall_table", "firewall_table=%s names the table inet %s that the site already has "
                                                             "(live or in /etc/nftables.conf) and the collection did not create; the "
                                                             "collection replaces its table whole, so name a new one (default torchrun)"
                                     % (table, table)))
    return found


def _allowed_ports(entry: Any) -> tuple[int, int] | None:
    """An entry's port as (first, last), or None when it is not a TCP port or range."""
    text = str(entry.get("port", "")).strip() if isinstance(entry, dict) else ""
    match = re.fullmatch(r"([0-9]{1,5})(?:-([0-9]{1,5}))?", text)
    if not match:
        return None
    first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    return (first, last) if 1 <= first <= last <= PORT_MAX else None


def job_port_spans(c: Cluster, node: str) -> list[tuple[int, int, str]]:
    """The ports of the jobs on ``node`` (this one's and the others'), each with what it is."""
    spans = []
    port, span = c.cluster("torchrun_master_port"), c.cluster(port_model.RANGE_VAR)
    if isinstance(port, int):
        spans.append((port, port, "torchrun_master_port"))
    if isinstance(span, list) and len(span) == 2 and all(isinstance(p, int) for p in span):
        spans.append((span[0], span[1], "torchrun_collective_port_range"))
    for other in (c.node_facts(node) or {}).get("jobs", []):
        if other.get("master_port") is not None and other.get("job") != c.cluster("torchrun_job"):
            spans.append((other["master_port"], other["master_port"], "the master port of job %s" % other.get("job")))
    return spans


def firewall_mode(c: Cluster) -> list[Problem]:
    """firewall_mode and firewall_allow: the allow-list only in strict mode, never over a job's port."""
    found = []
    for node in c.hosts:
        mode, allow = c.get(node, "firewall_mode"), c.get(node, "firewall_allow") or []
        if mode != "strict" and allow:
            found.append(problem(node, "firewall_allow", "firewall_allow is set, but firewall_mode=%s leaves every port but the jobs' as "
                                                         "the site has it; set firewall_mode=strict, or remove firewall_allow" % mode))
            continue
        for entry in allow:
            ports = _allowed_ports(entry)
            sources = entry.get("from") if isinstance(entry, dict) else None
            if ports is None or not isinstance(sources, list) or not sources or set(entry) - {"port", "from"}:
                found.append(problem(node, "firewall_allow", "firewall_allow holds %s: each entry is {port: <TCP port or first-last>, from: "
                                                             "[<addresses or networks>]}" % shown(entry)))
                continue
            for source in sources:
                try:
                    ipaddress.ip_network(str(source).strip(), strict=False)
                except ValueError:
                    found.append(problem(node, "firewall_allow", "firewall_allow port %s holds the source %s, which is not an address or "
                                                                 "network" % (entry["port"], shown(source))))
            for first, last, what in job_port_spans(c, node):
                if ports[0] <= last and first <= ports[1]:
                    found.append(problem(node, "firewall_allow", "firewall_allow port %s overlaps %s (%s); the jobs' unauthenticated "
                                                                 "ports are for their peers only" % (entry["port"], what,
                                                                                                     first if first == last else "%d-%d" % (first, last))))
        facts = c.node_facts(node)
        if mode == "strict" and facts is not None:
            chosen = _chosen_backend(c.get(node, "firewall_backend"), list(facts.get("firewall_active", [])))
            if chosen in ("firewalld", "ufw"):
                found.append(problem(node, "firewall_mode", "firewall_mode=strict, but %s guards this node and decides every other port; "
                                                            "strict is for nodes without a firewall manager: leave firewall_mode=jobs" % chosen))
    return found


def notes(c: Cluster) -> list[str]:
    """What a run will change that the operator should know, though nothing is wrong: a collective range
    that the node's connections already half fill, and the listening services that firewall_mode=strict
    cuts off from other hosts, on each node."""
    found = []
    span = c.cluster(port_model.RANGE_VAR)
    for node in c.hosts:
        facts = c.node_facts(node)
        use = (facts or {}).get("ephemeral") or {}
        if isinstance(span, list) and len(span) == 2 and use.get("total", 0) * 2 >= span[1] - span[0] + 1:
            found.append("WARNING %s: %d TCP connections hold ephemeral ports now, half or more of the %d ports of "
                         "torchrun_collective_port_range %s-%s, which becomes the whole ephemeral range of the node: size the range "
                         "for the other programs of the node too" % (node, use["total"], span[1] - span[0] + 1, span[0], span[1]))
        if c.get(node, "firewall_mode") != "strict" or facts is None:
            continue
        kept = [(p, p) for p in set(facts.get("ssh_ports", [])) | {int(c.get(node, "ansible_port") or 22)}]
        kept += [(p, p) for p in c.get(node, "firewall_ssh_ports") or []]
        kept += [span[:2] for span in job_port_spans(c, node)]
        kept += [ports for ports in map(_allowed_ports, c.get(node, "firewall_allow") or []) if ports]
        cut = {}
        for entry in facts.get("listeners", []):
            address = str(entry.get("address", ""))
            if address.startswith("127.") or address in ("::1", "0:0:0:0:0:0:0:1"):
                continue
            port = entry.get("port")
            if isinstance(port, int) and not any(first <= port <= last for first, last in kept):
                cut.setdefault(port, entry.get("process") or "an unknown process")
        if cut:
            found.append("WARNING %s: firewall_mode=strict drops every port but SSH, the ports of the jobs and firewall_allow, which cuts "
                         "%s off from other hosts: add what must stay reachable to firewall_allow (port and sources), or leave "
                         "firewall_mode=jobs" % (node, ", ".join("%s (%d)" % (name, port) for port, name in sorted(cut.items()))))
    return found


def _chosen_backend(backend: str, active: list[str]) -> str:
    """What firewall_backend picks on a node whose active managers are ``active`` (as the firewall role's detect.yml does)."""
    return backend if backend != "auto" else (active[0] if active else "nftables")


def _site_manager(node: str, chosen: str, site: dict) -> list[Problem]:
    """The site's firewall manager must deny what the job's rules do not allow, or the rules guard nothing."""
    if chosen == "firewalld" and site.get("firewalld_target", "").upper() == "ACCEPT":
        zone = site.get("firewalld_zone", "")
        return [problem(node, "firewall_backend", "firewalld lets every address in through zone %s (target ACCEPT), so the job's "
                                                  "peers-only rules in it guard nothing and the job's ports would rest on the "
                                                  "collection's guard table alone; move the cluster interface to a zone that rejects "
                                                  "by default (firewall-cmd --permanent --zone=public --change-interface=<interface>), "
                                                  "or set that zone's target to default" % zone)]
    found = []
    if chosen == "ufw" and site.get("ufw_default_input", "DROP") == "ACCEPT":
        found.append(problem(node, "firewall_backend", "ufw lets every address in (default allow incoming), so the job's peers-only "
                                                       "rules in it guard nothing and the job's ports would rest on the collection's "
                                                       "guard table alone; run ufw default deny incoming"))
    if chosen == "ufw" and site.get("ufw_ipv6") is False:
        found.append(problem(node, "firewall_backend", "ufw filters IPv4 only (IPV6=no in /etc/default/ufw) while the job's store "
                                                       "listens on IPv6 too, guarded over IPv6 by the collection's guard table alone; "
                                                       "set IPV6=yes and run ufw reload"))
    return found
