"""Scale: the idempotent converge of setup.yml, the all-pairs connectivity check and the health check at 2..16 nodes.

The nodes share one seed layer (sandbox.py seed): node1 of a 2-node cluster is set up once from
the bare image, its changes (packages, the venv with torch, the torchrun user) are kept as a
read-only overlay layer, and every node of every size boots on image + seed + its own layer.
Each size is then converged once (firewall peers, node ranks and units differ per size) and timed
over --repeat idempotent runs, which must report changed=0 on every node. The connectivity check
is `setup.yml --tags connectivity` (facts and preflight included), also --repeat times. The health
check (playbooks/healthcheck.yml, 1 MiB world sizes, 4 MiB pairs) runs once per size: its pair phase
runs in rounds of disjoint pairs at the same time (pair_rounds, pair_seconds). At the largest size a
node in the middle of the group is throttled to 50 Mbit/s, and the check must name it alone.
"""

from __future__ import annotations

import common
import json
import tempfile
from pathlib import Path

from common import BenchError, changed_hosts, cluster, log, median, playbook, result, sandbox, slowest_tasks, ssh

CHECK = {"healthcheck_min_bytes": 1 << 20, "healthcheck_max_bytes": 1 << 20, "healthcheck_pair_bytes": 4 << 20, "healthcheck_pair_ratio": 0.2}


def health_check(size: int, **extra) -> dict:
    """One health check run; its wall time and the report's pair phase."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        settings = dict(CHECK, healthcheck_report=str(report), **extra)
        try:
            seconds, _out = playbook("healthcheck", "-e", json.dumps(settings))
        except BenchError:
            if "healthcheck_fail_on" not in extra:
                raise
            seconds = -1.0
        graded = json.loads(report.read_text())
    found = graded["report"]
    return {"nodes": size, "wall_s": round(seconds, 1), "pair_rounds": found.get("pair_rounds"), "pair_retests": found.get("pair_retests"),
            "pair_seconds": found.get("pair_seconds"), "pairs": len(found.get("pairs") or []), "status": graded["status"],
            "suspects": graded["suspects"], "slow_pairs": graded["slow_pairs"], "reasons": graded["reasons"][:12],
            "pair_gbps": {"-".join(p["nodes"]): [p["busbw_gbps"], p.get("retested", False)] for p in found.get("pairs") or []}}


def throttled(nodes: list[str]) -> dict:
    """A node in the middle of the group throttled to 50 Mbit/s: the check must name it, alone."""
    slow = nodes[len(nodes) // 2]
    ssh(slow, "tc qdisc add dev host0 root tbf rate 50mbit burst 64kb latency 100ms")
    try:
        found = health_check(len(nodes), healthcheck_fail_on="fail")
    finally:
        ssh(slow, "tc qdisc del dev host0 root", check=False)
    found["throttled"] = slow
    return found


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
        health = health_check(size)
        rows.append({"nodes": size, "pairs": size * (size - 1), "first_converge_s": round(first, 1),
                     "converge_s": round(median(converge), 2), "connectivity_s": round(median(check), 2),
                     "converge_runs": [round(t, 2) for t in converge], "connectivity_runs": [round(t, 2) for t in check],
                     "controller_cpu_s": round(median([c["controller"] for c in cpu]), 1),
                     "nodes_cpu_s": round(median([c["nodes"] for c in cpu]), 1),
                     "slowest_tasks": slowest_tasks(profiles[-1]), "healthcheck": health})
        log("scale: %d nodes: converge %.1f s, connectivity %.1f s" % (size, rows[-1]["converge_s"], rows[-1]["connectivity_s"]))
    small, large = rows[0], rows[-1]
    slow = throttled(nodes)
    log("scale: %d nodes, %s throttled: named in %.1f s (pair phase %.1f s)" % (len(nodes), slow["throttled"], slow["wall_s"],
                                                                                 slow["pair_seconds"]))
    detail = {"sizes": rows, "seed_setup_s": round(cold, 1), "throttled": slow}
    # The pair phase against the next smaller size that has pairs to run at once (4 nodes: 3 rounds).
    base = next((r for r in rows if r["nodes"] >= 4 and r is not large), small)
    return [
        # A miss is a row of its own, not the end of the run: the other figures are kept.
        {"key": "scale_throttled", "title": "A node throttled to 50 Mbit/s among %d is named by the health check" % len(nodes),
         "ours": ", ".join(slow["suspects"]) or "nobody", "baseline": slow["throttled"], "unit": "", "ratio": None, "target": None,
         "met": slow["suspects"] == [slow["throttled"]], "details": {"status": slow["status"], "wall_s": slow["wall_s"],
                                                                      "pair_seconds": slow["pair_seconds"], "pair_retests": slow["pair_retests"]}},
        result("scale_healthcheck_pairs", "Health check pair phase, %d vs %d nodes (%d vs %d rounds; every pair: %dx the pairs)"
               % (large["nodes"], base["nodes"], large["healthcheck"]["pair_rounds"], base["healthcheck"]["pair_rounds"],
                  large["pairs"] // base["pairs"]),
               large["healthcheck"]["pair_seconds"], base["healthcheck"]["pair_seconds"], 1.25 * large["nodes"] / base["nodes"]),  # linear, +25 %
        result("scale_healthcheck", "Health check, whole run, %d vs %d nodes" % (large["nodes"], base["nodes"]),
               large["healthcheck"]["wall_s"], base["healthcheck"]["wall_s"], 1.25 * large["nodes"] / base["nodes"]),  # linear, +25 %
        result("scale_converge", "Idempotent converge (setup.yml), %d vs %d nodes" % (large["nodes"], small["nodes"]),
               large["converge_s"], small["converge_s"], 2.0, **detail),
        result("scale_connectivity", "All-pairs connectivity check, %d vs %d nodes (%dx the pairs)"
               % (large["nodes"], small["nodes"], large["pairs"] // small["pairs"]),
               large["connectivity_s"], small["connectivity_s"], 2.0),
    ]
