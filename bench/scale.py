"""Scale: the idempotent converge of setup.yml and the all-pairs connectivity check at 2..16 nodes.

The nodes share one seed layer (sandbox.py seed): node1 of a 2-node cluster is set up once from
the bare image, its changes (packages, the venv with torch, the torchrun user) are kept as a
read-only overlay layer, and every node of every size boots on image + seed + its own layer.
Each size is then converged once (firewall peers, node ranks and units differ per size) and timed
over --repeat idempotent runs, which must report changed=0 on every node. The connectivity check
is `setup.yml --tags connectivity` (facts and preflight included), also --repeat times.
"""

from __future__ import annotations

import common
from common import BenchError, changed_hosts, cluster, log, median, playbook, result, sandbox, slowest_tasks


def prime_seed() -> float:
    """Set up a 2-node cluster from the bare image and keep node1's changes as the seed."""
    cluster(2)
    seconds, _out = playbook("setup")
    sandbox("seed", "node1")
    return seconds


def idempotent(nodes: list[str], cpu: list[dict], profiles: list[str]) -> float:
    seconds, out = playbook("setup", profile=True)  # the callback's own cost is a few ms per task
    cpu.append(dict(common.LAST_CPU))
    profiles.append(out)
    changed = {host: count for host, count in changed_hosts(out).items() if host != "localhost"}
    if set(changed) != set(nodes) or any(changed.values()):
        raise BenchError("setup.yml was not idempotent on %d nodes: changed=%s" % (len(nodes), changed))
    return seconds


def run(sizes: list[int], repeat: int) -> list[dict]:
    log("scale: setting up node1 from the bare image for the seed layer")
    cold = prime_seed()
    rows = []
    for size in sizes:
        log("scale: %d nodes" % size)
        nodes = cluster(size, seed=True)
        first, _out = playbook("setup")
        cpu: list[dict] = []
        profiles: list[str] = []
        converge = [idempotent(nodes, cpu, profiles) for _ in range(repeat)]
        check = [playbook("setup", "--tags", "connectivity")[0] for _ in range(repeat)]
        rows.append({"nodes": size, "pairs": size * (size - 1), "first_converge_s": round(first, 1),
                     "converge_s": round(median(converge), 2), "connectivity_s": round(median(check), 2),
                     "converge_runs": [round(t, 2) for t in converge], "connectivity_runs": [round(t, 2) for t in check],
                     "controller_cpu_s": round(median([c["controller"] for c in cpu]), 1),
                     "nodes_cpu_s": round(median([c["nodes"] for c in cpu]), 1),
                     "slowest_tasks": slowest_tasks(profiles[-1])})
        log("scale: %d nodes: converge %.1f s, connectivity %.1f s" % (size, rows[-1]["converge_s"], rows[-1]["connectivity_s"]))
    small, large = rows[0], rows[-1]
    detail = {"sizes": rows, "seed_setup_s": round(cold, 1)}
    return [
        result("scale_converge", "Idempotent converge (setup.yml), %d vs %d nodes" % (large["nodes"], small["nodes"]),
               large["converge_s"], small["converge_s"], 2.0, **detail),
        result("scale_connectivity", "All-pairs connectivity check, %d vs %d nodes (%dx the pairs)"
               % (large["nodes"], small["nodes"], large["pairs"] // small["pairs"]),
               large["connectivity_s"], small["connectivity_s"], 2.0),
    ]
