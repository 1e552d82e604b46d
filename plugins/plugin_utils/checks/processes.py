# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Processes and GPUs: nproc per node, the job's GPU set, Lightning's Trainer."""

from __future__ import annotations

import re

from ansible_collections.onprem.torchrun.plugins.module_utils.contract import processes_over_gpus
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, Problem, problem, shown


def processes(c: Cluster) -> list[Problem]:
    """Processes per node: a positive number or gpu; with node facts, against the GPUs on each node's PCI bus."""
    found = []
    counts: dict[str, int | None] = {}
    cuda = c.cluster("torchrun_accelerator") == "cuda"
    for host in c.hosts:
        nproc = c.get(host, "torchrun_nproc_per_node")
        if nproc is None:
            counts[host] = None
            continue
        text = str(nproc).strip()
        if not (text == "gpu" or (re.fullmatch(r"[0-9]+", text) and int(text) > 0)) or isinstance(nproc, bool):
            found.append(problem(host, "torchrun_nproc_per_node", 'torchrun_nproc_per_node=%s must be a positive integer or "gpu"' % shown(nproc)))
            counts[host] = None
            continue
        if text == "gpu" and not cuda:
            found.append(problem(host, "torchrun_nproc_per_node", "torchrun_nproc_per_node=gpu needs torchrun_accelerator=cuda; a CPU node "
                                                                  "needs a number of processes"))
            counts[host] = None
            continue
        facts = c.node_facts(host)
        gpus = None if facts is None else int(facts.get("gpus", 0))
        chosen, gpu_problems = _gpu_set(c, host, cuda, text, gpus)
        found += gpu_problems
        if cuda and gpus is not None and c.get(host, "nvidia_require_gpus", True):
            if gpus == 0:
                found.append(problem(host, "torchrun_accelerator", "torchrun_accelerator=cuda but the node has no NVIDIA GPU on its PCI bus; "
                                                                   "use torchrun_accelerator=cpu, or nvidia_require_gpus=false to install the stack anyway"))
            elif text != "gpu" and processes_over_gpus(int(text), gpus) and not chosen:
                found.append(problem(host, "torchrun_nproc_per_node", "torchrun_nproc_per_node=%s but the node has %d NVIDIA GPU(s); give at "
                                                                      "most %d, or gpu for one process per GPU" % (text, gpus, gpus)))
        if chosen:  # the job's GPU set, which gpu counts
            gpus = len(chosen)
        counts[host] = int(text) if text != "gpu" else (gpus if gpus else None)
    known = {h: n for h, n in counts.items() if n is not None}
    if len(known) == len(c.hosts) and len(set(known.values())) > 1 and not c.cluster("torchrun_heterogeneous"):
        first = known[c.master]
        for host in c.hosts[1:]:
            if known[host] != first:
                found.append(problem(host, "torchrun_nproc_per_node", "runs %d process(es) per node (torchrun_nproc_per_node), %s runs %d; "
                                                                      "make them equal, or set torchrun_heterogeneous=true if the nodes "
                                                                      "really differ" % (known[host], c.master, first)))
    found += _lightning(c, known)
    return found


GPU_INDEX = re.compile(r"^[0-9]{1,3}$")
GPU_UUID = re.compile(r"^(GPU|MIG)-[0-9a-fA-F][0-9a-fA-F/-]{3,}$")


def _gpu_set(c: Cluster, host: str, cuda: bool, nproc: str, gpus: int | None) -> tuple[list[str], list[Problem]]:
    """torchrun_gpus of one node (CUDA_VISIBLE_DEVICES): its syntax, against the processes, the node's GPUs and other jobs."""
    chosen = [str(g).strip() for g in (c.get(host, "torchrun_gpus") or [])]
    if not chosen:
        return [], _gpu_overlap(c, host, cuda, None)
    var = "torchrun_gpus"
    if not cuda:
        return [], [problem(host, var, "torchrun_gpus is set, but torchrun_accelerator is not cuda; remove it")]
    bad = [g for g in chosen if not (GPU_INDEX.match(g) or GPU_UUID.match(g))]
    if bad:
        return [], [problem(host, var, "torchrun_gpus holds %s: each entry must be a GPU index (0, 1, ...) or a GPU or MIG UUID "
                                       "(GPU-..., MIG-..., as nvidia-smi -L prints them)" % ", ".join(shown(g) for g in bad))]
    if len(set(chosen)) != len(chosen):
        return [], [problem(host, var, "torchrun_gpus=%s names a GPU twice" % ",".join(chosen))]
    if len({bool(GPU_INDEX.match(g)) for g in chosen}) > 1:
        return [], [problem(host, var, "torchrun_gpus=%s mixes indices and UUIDs; use one kind" % ",".join(chosen))]
    found = []
    if nproc != "gpu" and int(nproc) > len(chosen):
        found.append(problem(host, "torchrun_nproc_per_node", "torchrun_nproc_per_node=%s but torchrun_gpus gives the job %d GPU(s); give at "
                                                              "most %d processes, or gpu for one per GPU of the set" % (nproc, len(chosen), len(chosen))))
    if gpus is not None:
        if len(chosen) > gpus:
            found.append(problem(host, var, "torchrun_gpus names %d GPU(s), but the node has %d" % (len(chosen), gpus)))
        else:
            beyond = [g for g in chosen if GPU_INDEX.match(g) and int(g) >= gpus]
            if beyond:
                found.append(problem(host, var, "torchrun_gpus holds %s, but the node's GPUs are 0 to %d" % (", ".join(beyond), gpus - 1)))
    return chosen, found + _gpu_overlap(c, host, cuda, chosen)


def _gpu_overlap(c: Cluster, host: str, cuda: bool, chosen: list[str] | None) -> list[Problem]:
    """Two CUDA jobs on a node must not share a GPU; a job without torchrun_gpus uses every GPU."""
    facts = c.node_facts(host)
    if not cuda or facts is None:
        return []
    job = c.cluster("torchrun_job")
    found = []
    for other in facts.get("jobs", []):
        if other.get("job") == job or other.get("accelerator") not in (None, "cuda"):
            continue
        theirs = other.get("gpus")
        if chosen is None or theirs is None:
            shared = "every GPU" if chosen is None and theirs is None else "the node's GPUs"
        else:
            common = sorted(set(chosen) & set(theirs))
            if not common:
                continue
            shared = "GPU(s) %s" % ", ".join(common)
        found.append(problem(host, "torchrun_gpus", "job %s on this node already uses %s (its torchrun_gpus: %s); give each job its own "
                                                    "GPUs with torchrun_gpus on this node" % (other["job"], shared, ",".join(theirs) if theirs else "all")))
    return found


def _lightning(c: Cluster, counts: dict[str, int]) -> list[Problem]:
    trainer = c.cluster("torchrun_lightning_trainer") or {}
    nnodes = c.cluster("torchrun_nnodes")
    nodes = str(len(c.hosts)) if nnodes in (None, "") else str(nnodes)
    if not trainer or len(counts) != len(c.hosts) or len(set(counts.values())) != 1 or not nodes.isdigit():
        return []
    per_node = counts[c.master]
    world = per_node * int(nodes)
    try:
        devices = int(trainer.get("devices", per_node))
        num_nodes = int(trainer.get("num_nodes", nodes))
    except (TypeError, ValueError):
        return [problem(c.master, "torchrun_lightning_trainer", "torchrun_lightning_trainer=%s: devices and num_nodes must be whole numbers"
                        % shown(trainer))]
    if devices * num_nodes == world:
        return []
    return [problem(c.master, "torchrun_lightning_trainer",
                    "torchrun_lightning_trainer gives Trainer(devices=%d, num_nodes=%d), %d process(es), but the job runs %d "
                    "(%s node(s) x %d); Lightning stops at start-up: pass devices=%d and num_nodes=%s, or leave them out"
                    % (devices, num_nodes, devices * num_nodes, world, nodes, per_node, per_node, nodes))]
