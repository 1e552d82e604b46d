# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Folders the job reads or writes: declared paths, shared storage, the fabric's devices."""

from __future__ import annotations

from ansible_collections.onprem.torchrun.plugins.module_utils import fabric as fabric_model
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import (
    Cluster, PATH_RULE, Problem, absolute_path, bad_path, system_folder, problem, shown,
)


FOLDER_VARS = ("torchrun_read_paths", "torchrun_write_paths")


def declared_paths(c: Cluster) -> list[Problem]:
    """torchrun_read_paths and torchrun_write_paths: absolute data folders, not the system's; on every node, usable by the job."""
    host = c.master
    found = []
    lists = {var: [str(p) for p in (c.cluster(var) or [])] for var in FOLDER_VARS}
    hidden = [c.cluster("torchrun_state_dir"), c.cluster("torchrun_venv")]
    for var, paths in lists.items():
        for path in paths:
            if bad_path(path):
                found.append(problem(host, var, "%s holds %s: each %s" % (var, shown(path), PATH_RULE)))
                continue
            inside = system_folder(path, hidden)
            if inside:
                found.append(problem(host, var, "%s holds %s, %s; give the job its own data folder (such as /srv/<name> or a "
                                                "mount point)" % (var, path, "inside %s, which the job's unit keeps from it or from "
                                                                  "change" % inside if inside != "top" else "a top-level system folder")))
    both = sorted(set(p.rstrip("/") for p in lists["torchrun_read_paths"]) & set(p.rstrip("/") for p in lists["torchrun_write_paths"]))
    if both:
        found.append(problem(host, "torchrun_read_paths", "%s is in both torchrun_read_paths and torchrun_write_paths; keep it in one" % ", ".join(both)))
    if found or c.facts is None:
        return found
    user = c.cluster("torchrun_user")
    for node in c.hosts:
        folders = (c.node_facts(node) or {}).get("folders") or {}
        for var, paths in lists.items():
            need = "writable" if var == "torchrun_write_paths" else "readable"
            for path in paths:
                seen = folders.get(path)
                if seen is None:
                    continue
                if not seen.get("exists"):
                    found.append(problem(node, var, "%s holds %s, which is not a folder on this node; create or mount it on every node"
                                         % (var, path)))
                elif seen.get(need) is False:
                    found.append(problem(node, var, "%s holds %s, which %s cannot %s (owner %s, mode %s); give the job's user access "
                                                    "(chown, chgrp or chmod)" % (var, path, user, "write" if need == "writable" else "read",
                                                                                 seen.get("owner"), seen.get("mode"))))
    return found


def shared_storage(c: Cluster) -> list[Problem]:
    """torchrun_shared_dir: one file system on every node (a token written on the master is seen on each), writable by the job's user."""
    host = c.master
    shared = c.cluster("torchrun_shared_dir")
    var = "torchrun_shared_dir"
    if not shared:
        return []
    bad = absolute_path(host, var, shared)
    if bad:
        return bad
    inside = system_folder(shared, [c.cluster("torchrun_state_dir"), c.cluster("torchrun_venv")])
    if inside:
        return [problem(host, var, "torchrun_shared_dir=%s is %s; give the mount point of the site's shared storage (such as "
                                   "/srv/shared or /mnt/nfs)" % (shared, "a top-level system folder" if inside == "top" else "inside " + inside))]
    if c.facts is None:
        return []
    found = []
    uids = {}
    for node in c.hosts:
        facts = c.node_facts(node) or {}
        seen = (facts.get("folders") or {}).get(shared) or {}
        if "folders" in facts and not seen.get("exists"):
            found.append(problem(node, var, "torchrun_shared_dir=%s is not a folder on this node; mount the shared storage there on "
                                            "every node" % shared))
            continue
        if seen.get("writable") is False:
            found.append(problem(node, var, "torchrun_shared_dir=%s cannot be written by %s (owner %s, mode %s); let the job's user "
                                            "write it" % (shared, c.cluster("torchrun_user"), seen.get("owner"), seen.get("mode"))))
        elif facts.get("shared_token_seen") is False:
            found.append(problem(node, var, "torchrun_shared_dir=%s is not the same file system as on %s (a token written there on %s "
                                            "is not seen here): a local folder of that name, or a mount that is missing; mount the "
                                            "shared storage there" % (shared, c.master, c.master)))
        account = facts.get("account") or {}
        if account.get("exists") and account.get("uid") is not None:
            uids[node] = account["uid"]
    if len(set(uids.values())) > 1:
        first = uids.get(c.master, next(iter(uids.values())))
        for node, uid in uids.items():
            if uid != first:
                text = ("%s has uid %d here and %d on %s; on shared storage the files of one are not the other's: give the user "
                        "the same uid on every node (torchrun_uid)" % (c.cluster("torchrun_user"), uid, first, c.master))
                found.append(problem(node, "torchrun_user", text))
    return found


def fabric(c: Cluster) -> list[Problem]:
    """The RDMA ports NCCL is to use (torchrun_fabric, torchrun_fabric_hcas): names on the controller;
    with node facts, each node's ports (fabric.nccl_plan) and the odd node out among them."""
    found = []
    for host in c.hosts:
        for name in c.get(host, "torchrun_fabric_hcas") or []:
            if not fabric_model.HCA.match(str(name)):
                found.append(problem(host, "torchrun_fabric_hcas", "torchrun_fabric_hcas has %s, which is not an RDMA device name with an "
                                                                   "optional port (mlx5_0, mlx5_0:1; see ls /sys/class/infiniband)" % shown(name)))
    if found or c.facts is None:
        return found
    mode = c.cluster("torchrun_fabric", "auto")
    plans = {}
    for host in c.hosts:
        facts = c.node_facts(host)
        if facts is None or "fabric" not in facts:
            continue
        plans[host] = fabric_model.nccl_plan(facts["fabric"], mode, c.get(host, "torchrun_fabric_hcas") or [], c.addresses.get(host, ""))
        found += [problem(host, "torchrun_fabric", text) for text in plans[host]["problems"]]
    if mode != "socket":
        found += [problem(host, "torchrun_fabric", text + "; make the nodes alike, narrow torchrun_fabric_hcas, or set torchrun_fabric=socket")
                  for host, text in sorted(fabric_model.cluster_problems(plans).items())]
    return found
