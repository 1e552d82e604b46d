#!/usr/bin/env python3
"""A cost model for 64 to 512 nodes, from the figures `make bench` measured (docs/benchmarks/results.json).

    .venv/bin/python bench/model.py [--results docs/benchmarks/results.json] [--cores 16] [--forks 50]

Writes docs/benchmarks/cost-model.md. The model (each term a measured figure, named in the output):

- converge (idempotent setup.yml): the controller's CPU grows by c seconds per node (the slope of
  controller CPU against nodes, least squares over the scale sizes); the nodes' own work runs on
  each node in parallel, in batches of `forks`. Wall = max(controller CPU / cores, w x ceil(N / forks))
  where w is one node's converge wall at the smallest size (an upper bound: there the sandbox's two
  cores are shared by controller and nodes).
- connectivity: a fixed start a plus b seconds per node (least squares over the scale sizes); on the
  sandbox b is CPU on two shared cores (2b CPU seconds per node), on a controller with `cores` cores
  2b x N / cores. The probes themselves run on the nodes, in parallel, a few ms per peer.
- health check: a fixed start s (wall minus pair phase at the smallest size with pairs) plus the
  pair phase in rounds: every pair needs N-1 rounds (N for odd N), a sampled run R rounds
  (healthcheck_pair_rounds); a round costs r seconds (pair_seconds / pair_rounds at the largest size).
- launch: the relaunch benchmark's figure plus the controller's CPU for the added nodes, launch
  running about a quarter of converge's tasks per node (LAUNCH_SHARE).

The check: the model fitted on all sizes but the largest predicts the largest, and the error is
printed beside the projections. The sandbox's nodes share two cores, so its per-node figures are
upper bounds for servers, where each node has its own CPUs.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (64, 128, 256, 512)
LAUNCH_SHARE = 0.25  # launch.yml's tasks per node against setup.yml's (about 15 of 60)
SANDBOX_CORES = 2


def slope(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through (x, y) points: (intercept, slope)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    b = sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0
    return mean_y - b * mean_x, b


class Model:
    def __init__(self, rows: list[dict], relaunch_s: float | None, cores: int, forks: int, sample_rounds: int):
        self.rows, self.cores, self.forks, self.sample_rounds = rows, cores, forks, sample_rounds
        self.cpu0, self.cpu_per_node = slope([(r["nodes"], r["controller_cpu_s"]) for r in rows])
        smallest = rows[0]
        self.node_wall = smallest["converge_s"]
        self.probe0, self.probe_per_node = slope([(r["nodes"], r["connectivity_s"]) for r in rows])
        checks = [r for r in rows if (r.get("healthcheck") or {}).get("pair_rounds")]
        self.round_s = self.start_s = None
        if checks:
            largest = checks[-1]["healthcheck"]
            self.round_s = largest["pair_seconds"] / largest["pair_rounds"]
            first = checks[0]["healthcheck"]
            self.start_s = max(0.0, first["wall_s"] - first["pair_seconds"])
        self.relaunch_s = relaunch_s

    def controller(self, n: int) -> float:
        return (self.cpu0 + self.cpu_per_node * n) / self.cores

    def converge(self, n: int) -> float:
        return max(self.controller(n), self.node_wall * math.ceil(n / self.forks))

    def connectivity(self, n: int) -> float:
        return self.probe0 + self.probe_per_node * SANDBOX_CORES * n / self.cores

    def rounds(self, n: int) -> int:
        return n - 1 if n % 2 == 0 else n

    def healthcheck(self, n: int, rounds: int) -> float | None:
        if self.round_s is None:
            return None
        return self.start_s + rounds * self.round_s

    def launch(self, n: int) -> float | None:
        if self.relaunch_s is None:
            return None
        smallest = self.rows[0]["nodes"]
        return self.relaunch_s + LAUNCH_SHARE * self.cpu_per_node * max(0, n - smallest) / self.cores


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return "%.0f s" % value if value < 120 else "%.1f min" % (value / 60)


def markdown(results: dict, cores: int, forks: int, sample_rounds: int) -> str:
    by_key = {r["key"]: r for r in results["results"]}
    rows = by_key["scale_converge"]["details"]["sizes"]
    relaunch = by_key.get("relaunch", {}).get("ours")
    model = Model(rows, relaunch, cores, forks, sample_rounds)
    fit = Model(rows[:-1], relaunch, SANDBOX_CORES, 50, sample_rounds)  # the sandbox's own controller
    largest = rows[-1]
    predicted_cpu = fit.cpu0 + fit.cpu_per_node * largest["nodes"]
    lines = [
        "# Cost model: 64 to 512 nodes",
        "",
        "Generated by `bench/model.py` from `results.json` (%s, %s). Projections for a controller with %d cores and"
        " `forks = %d` (ansible.cfg), servers with their own CPUs, the collection's defaults otherwise."
        % (results["run"]["date"], results["run"]["machine"], cores, forks),
        "",
        "## Measured terms",
        "",
        "| term | value | from |",
        "| --- | --- | --- |",
        "| controller CPU per node (idempotent converge) | %.2f s | slope over %s nodes |" % (
            model.cpu_per_node, ", ".join(str(r["nodes"]) for r in rows)),
        "| one node's converge wall | %.1f s | converge at %d nodes (upper bound) |" % (model.node_wall, rows[0]["nodes"]),
        "| connectivity: start, and wall per node on the sandbox's 2 cores | %.1f s, %.2f s | least squares over the sizes |" % (
            model.probe0, model.probe_per_node),
        "| health check round of pairs | %s | pair_seconds / pair_rounds at the largest size |" % (
            "%.2f s" % model.round_s if model.round_s is not None else "not measured yet"),
        "| health check start | %s | wall minus pair phase at the smallest size |" % (
            "%.1f s" % model.start_s if model.start_s is not None else "not measured yet"),
        "| relaunch | %s | the relaunch benchmark |" % fmt(relaunch),
        "",
        "## Check against the measured sizes",
        "",
        ("Fitted on %s nodes, the controller CPU at %d nodes is predicted %.1f s; measured %.1f s (%+.0f %%)." % (
            ", ".join(str(r["nodes"]) for r in rows[:-1]), largest["nodes"], predicted_cpu, largest["controller_cpu_s"],
            100 * (predicted_cpu - largest["controller_cpu_s"]) / largest["controller_cpu_s"])
         if len(rows) >= 3 else "No check: it needs three sizes or more (`make bench` runs 2, 4, 8 and 16 nodes)."),
        "",
        "## Projections",
        "",
        "| nodes | converge | connectivity | health check, every pair (rounds) | health check, %d rounds | relaunch |" % sample_rounds,
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for n in SIZES:
        lines.append("| %d | %s | %s | %s (%d) | %s | %s |" % (
            n, fmt(model.converge(n)), fmt(model.connectivity(n)), fmt(model.healthcheck(n, model.rounds(n))), model.rounds(n),
            fmt(model.healthcheck(n, sample_rounds)), fmt(model.launch(n))))
    lines += [
        "",
        "Reading it: at 512 nodes the controller's CPU (%.1f s per node over %d cores) takes %s, the nodes' own work in"
        " batches of forks=%d takes %s: %s sets converge's pace. More forks help until the controller's CPU does; the"
        " per-node CPU is what the collection can lower. The health check's pair phase grows with the rounds, one round"
        " per node: above a few dozen nodes `healthcheck_pair_rounds` bounds it, and a slow node is still named (each node"
        " is in a ring pair on both sides, and a slow pair is measured again against a node of the fastest pair)." % (
            model.cpu_per_node, cores, fmt(model.controller(512)), forks, fmt(model.node_wall * math.ceil(512 / forks)),
            "the controller" if model.controller(512) > model.node_wall * math.ceil(512 / forks) else "the batches of forks"),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(ROOT / "docs" / "benchmarks" / "results.json"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "cost-model.md"))
    parser.add_argument("--cores", type=int, default=16, help="the controller's cores")
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--sample-rounds", type=int, default=8, help="healthcheck_pair_rounds of the sampled column")
    args = parser.parse_args(argv)
    results = json.loads(Path(args.results).read_text())
    Path(args.out).write_text(markdown(results, args.cores, args.forks, args.sample_rounds))
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
