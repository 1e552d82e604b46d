"""All-reduce bandwidth through torchrun: the cluster's health check, and a GPU host's NCCL check.

Run under torchrun on every node (gloo on CPU, NCCL when --backend nccl or CUDA is there). It
times all_reduce over message sizes from --min-bytes to --max-bytes (doubling by 4) on the whole
world, then, with --pairs, between the first process of every pair of nodes, one pair at a time,
so that a slow node or link shows as its own row. Bandwidths follow nccl-tests: algorithm
bandwidth = bytes / time, bus bandwidth = algbw x 2(n-1)/n for all_reduce over n processes.
Times are the slowest rank's mean over --iters after --warmup rounds. Rank 0 writes one JSON
report to --output:

    {"backend": "gloo", "world_size": 4, "nodes": ["node1", "node2"],
     "sizes": [{"bytes": 1048576, "time_us": 812.3, "algbw_gbps": 1.29, "busbw_gbps": 1.94}, ...],
     "pairs": [{"nodes": ["node1", "node2"], "bytes": 16777216, "time_us": ..., "busbw_gbps": ...}]}

Bandwidths are in GB/s (10^9 bytes per second), as nccl-tests prints them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist

FLOAT_BYTES = 4


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--min-bytes", type=int, default=1 << 20)
    parser.add_argument("--max-bytes", type=int, default=64 << 20)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pairs", action="store_true", help="also time every pair of nodes")
    parser.add_argument("--pair-bytes", type=int, default=16 << 20)
    parser.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto")
    parser.add_argument("--output", default="", help="JSON report (rank 0); empty prints it")
    return parser.parse_args(argv)


def sizes(smallest, largest):
    found, size = [], max(smallest, FLOAT_BYTES)
    while size <= largest:
        found.append(size)
        size *= 4
    if not found or found[-1] != largest:
        found.append(largest)
    return found


def bus_factor(n):
    return 2.0 * (n - 1) / n if n > 1 else 0.0


def timed_all_reduce(nbytes, iters, warmup, device, group=None):
    """Mean seconds per all_reduce of nbytes on this rank."""
    tensor = torch.ones(nbytes // FLOAT_BYTES, dtype=torch.float32, device=device)
    for _round in range(warmup):
        dist.all_reduce(tensor, group=group)
    synchronize(device)
    dist.barrier(group=group)
    start = time.perf_counter()
    for _round in range(iters):
        dist.all_reduce(tensor, group=group)
    synchronize(device)
    return (time.perf_counter() - start) / iters


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def slowest(seconds, device):
    """The largest of every rank's time."""
    value = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return float(value.item())


def row(nbytes, seconds, n):
    algbw = nbytes / seconds / 1e9
    return {"bytes": nbytes, "time_us": round(seconds * 1e6, 1), "algbw_gbps": round(algbw, 4),
            "busbw_gbps": round(algbw * bus_factor(n), 4)}


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    backend = args.backend
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()

    # Who runs where: the nodes in group-rank order, and each node's first process.
    me = (int(os.environ.get("GROUP_RANK", "0")), local_rank, socket.gethostname(), rank)
    everyone = [None] * world
    dist.all_gather_object(everyone, me)
    leaders = sorted((group_rank, host, r) for group_rank, local, host, r in everyone if local == 0)
    nodes = [host for _g, host, _r in leaders]

    report = {"backend": backend, "world_size": world, "nodes": nodes, "torch": torch.__version__,
              "nccl": ".".join(map(str, torch.cuda.nccl.version())) if backend == "nccl" else None,
              "sizes": [], "pairs": []}
    for nbytes in sizes(args.min_bytes, args.max_bytes):
        seconds = slowest(timed_all_reduce(nbytes, args.iters, args.warmup, device), device)
        report["sizes"].append(row(nbytes, seconds, world))
        if rank == 0:
            print("all_reduce %10d B  %10.1f us  busbw %.3f GB/s" % (nbytes, seconds * 1e6, report["sizes"][-1]["busbw_gbps"]),
                  flush=True)

    if args.pairs and len(leaders) > 1:
        # Every rank creates every group (the API needs it); only the pair's two ranks use it.
        pairs = [(a, b, dist.new_group([a[2], b[2]])) for a, b in itertools.combinations(leaders, 2)]
        for a, b, group in pairs:
            seconds = 0.0
            if rank in (a[2], b[2]):
                seconds = timed_all_reduce(args.pair_bytes, args.iters, args.warmup, device, group)
            seconds = slowest(seconds, device)  # also keeps the pairs one at a time
            report["pairs"].append(dict(row(args.pair_bytes, seconds, 2), nodes=[a[1], b[1]]))
            if rank == 0:
                print("pair %s-%s  busbw %.3f GB/s" % (a[1], b[1], report["pairs"][-1]["busbw_gbps"]), flush=True)

    if rank == 0:
        text = json.dumps(report, indent=1)
        if args.output:
            with open(args.output + ".tmp", "w") as out:
                out.write(text + "\n")
            os.replace(args.output + ".tmp", args.output)
        else:
            print(text, flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
