# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job as the trust boundary: names that reach files, ports SSH holds open, what root runs or changes."""

from __future__ import annotations

import re

from ansible_collections.onprem.torchrun.plugins.module_utils import ports as port_model
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, Problem, bad_path, lies_under, problem, shown
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.firewall import job_port_spans


# Inventory names reach the job's files (its env file, its nftables file's comments), unit
# descriptions and reports: a host name (RFC 1123 labels, '_' as Ansible allows) or an IPv4 address.
HOST_PATTERN = re.compile(r"\A[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\Z")
HOST_MAX = 253
GROUP_PATTERN = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,63}\Z")  # Ansible's group name grammar


def inventory_names(c: Cluster) -> list[Problem]:
    found = []
    if not GROUP_PATTERN.match(c.group):
        found.append(Problem("inventory", "torchrun_group", "inventory: torchrun_group=%s must be an inventory group name: letters, digits "
                                                            "and '_', starting with a letter or '_'" % shown(c.group)))
    for host in c.hosts:
        if not HOST_PATTERN.match(host) or len(host) > HOST_MAX:
            found.append(Problem(host, "inventory name", "%s: the inventory name %s must be a host name (letters, digits, '-' and '_' "
                                                         "in dot-separated labels, at most %d characters) or an IP address; it reaches the "
                                                         "job's files and firewall rules: rename the host and give its address in "
                                                         "ansible_host" % (shown(host), shown(host), HOST_MAX)))
    return found


def _ssh_ports(c: Cluster) -> list[Problem]:
    """SSH ports are open to everyone: never one of the job's ports or another job's on the node."""
    found = []
    port = c.cluster("torchrun_master_port")
    span = c.cluster(port_model.RANGE_VAR)
    if not isinstance(port, int) or not (isinstance(span, list) and len(span) == 2 and all(isinstance(p, int) for p in span)):
        return found
    said = {"torchrun_master_port": "torchrun_master_port, the job's store",
            port_model.RANGE_VAR: "inside %s %s-%s" % (port_model.RANGE_VAR, span[0], span[1])}
    for node in c.hosts:
        spans = job_port_spans(c, node)  # this job's master port, its range, then the other jobs' master ports
        for var in ("firewall_ssh_ports", "ansible_port"):
            value = c.get(node, var)
            for ssh in (value if isinstance(value, list) else [value] if value not in (None, "") else []):
                try:
                    ssh = int(ssh)
                except (TypeError, ValueError):
                    continue
                what = next((said.get(label, label + " on this node") for first, last, label in spans if first <= ssh <= last), None)
                if what:
                    found.append(problem(node, var, "%s holds %s, which is %s; SSH ports are open to every address, so the "
                                                    "job's unauthenticated store would be too: list only the ports sshd listens on"
                                         % (var, ssh, what)))
    return found


def _job_writable(c: Cluster) -> dict[str, str]:
    """The folders jobs' users can write on every node, each with the setting that makes it so."""
    folders = {str(p).rstrip("/"): "torchrun_write_paths" for p in (c.cluster("torchrun_write_paths") or [])}
    for var in ("torchrun_state_dir", "torchrun_shared_dir"):
        value = c.cluster(var)
        if value:
            folders[str(value).rstrip("/")] = var
    return {f: var for f, var in folders.items() if f}


def _root_runs(c: Cluster) -> list[Problem]:
    """Root runs the venv's python (the requirements check) and py-spy: never from where another account writes."""
    venv = c.cluster("torchrun_venv")
    if not isinstance(venv, str) or bad_path(venv):
        return []
    found = []
    writable = _job_writable(c)
    inside = lies_under(venv, writable)
    if inside:
        found.append(problem(c.master, "torchrun_venv", "torchrun_venv=%s lies inside %s (%s), which jobs' users write, while root runs "
                                                        "the environment's python and py-spy: put the environment where only root "
                                                        "writes (such as /opt/torchrun/venv)" % (venv, inside, writable[inside])))
        return found
    for node in c.hosts:
        loose = (c.node_facts(node) or {}).get("venv_untrusted")
        if loose:
            text = ("torchrun_venv=%s can be changed by %s (%s, mode %s), while root runs the environment's python and py-spy: give "
                    "it and the folders above it to root (chown -R root: %s; chmod go-w)"
                    % (venv, loose.get("owner"), loose.get("path"), loose.get("mode"), loose.get("path")))
            found.append(problem(node, "torchrun_venv", text))
    return found


def _links(c: Cluster) -> list[Problem]:
    """Root sets the owner and mode of the job's folders: a symbolic link there (the job's user can plant one) is refused, never followed."""
    found = []
    for node in c.hosts:
        for path, target in sorted(((c.node_facts(node) or {}).get("links") or {}).items()):
            found.append(problem(node, "torchrun_state_dir" if not path.startswith(str(c.cluster("torchrun_shared_dir") or "\0")) else "torchrun_shared_dir",
                                 "%s is a symbolic link (to %s), which the job's user can plant; root gives the job's folders to its "
                                 "user and never follows a link there: remove it (rm %s) and run again" % (path, target, path)))
    return found


def _shared_nodes(c: Cluster) -> list[Problem]:
    """Two jobs on one node share the kernel's one ephemeral range (the collective range): a store in it is another job's to reach."""
    found = []
    job = c.cluster("torchrun_job")
    ours_c10d = c.cluster("torchrun_rdzv_backend") == "c10d"
    for node in c.hosts:
        for other in (c.node_facts(node) or {}).get("jobs", []):
            if other.get("job") == job:
                continue
            c10d = [name for name, used in ((job, ours_c10d), (other.get("job"), other.get("backend") == "c10d")) if used]
            if c10d:
                text = ("job %s is installed here too, and %s uses the c10d rendezvous, whose workers' store listens on a random port "
                        "of the collective range that the node's jobs share; no firewall rule tells on this node which job's user opened "
                        "a connection from another node, so the other job's user could reach that store: use "
                        "torchrun_rdzv_backend=static for both, or run the jobs on separate nodes" % (other.get("job"), " and ".join(c10d)))
                found.append(problem(node, "torchrun_rdzv_backend", text))
    return found


def ownership(c: Cluster) -> list[Problem]:
    """A job of this name installed here by another cluster (another inventory or group) is not ours to change or stop."""
    if c.cluster("job_takeover") is True:
        return []
    found = []
    job = c.cluster("torchrun_job")
    for node in c.hosts:
        facts = c.node_facts(node) or {}
        want = facts.get("cluster")
        for other in facts.get("jobs", []):
            have = other.get("cluster")
            if other.get("job") == job and want and have and have != want:
                found.append(problem(node, "job_takeover", "job %s on this node was installed by another cluster (%s), not by group %s of "
                                                           "this inventory (%s); it is not this run's to change or stop: choose another "
                                                           "torchrun_job, or take it over with -e job_takeover=true" % (job, have, c.group, want)))
    return found


def trust(c: Cluster) -> list[Problem]:
    """The job as the trust boundary: inventory names, SSH ports, what root runs and changes, jobs sharing nodes."""
    return inventory_names(c) + _ssh_ports(c) + _root_runs(c) + _links(c) + _shared_nodes(c)
