"""All-reduce bandwidth through torchrun: the cluster's health check, and a GPU host's NCCL check.

Run under torchrun on every node (gloo on CPU, NCCL when --backend nccl or CUDA is there). It
times all_reduce over message sizes from --min-bytes to --max-bytes (doubling by 4) on the whole
world, then, with --pairs, between the first processes of pairs of nodes: in rounds of disjoint
pairs that run at the same time (a round-robin schedule gives every pair in n-1 rounds of n/2
pairs; --pair-rounds R measures a ring and random perfect matchings, R rounds, for large
clusters). A round's readings are short (one warm-up, at most SCREEN_ITERS all_reduces in a
SCREEN_ITERS-th of the budget): they screen. Each pair is compared with its reference: the middle pair of its round where the round ran
several pairs at once (they shared the network and, on small machines, the CPUs), else the fastest
pair of the rounds. A pair under --pair-ratio of its reference is read again alone, with --warmup
and --iters, before it counts (and once more where it is still under it: alone on busy CPUs one
reading varies tenfold); a node in CONFIRMING pairs that stayed slow alone explains its other slow
pairs, which are not read again. With sampled rounds each node of a slow pair is also measured
against a node of the fastest pair, so that the slow node or link shows as its own row. Every
measurement is bounded: its iterations fit --budget seconds (at least one; an all_reduce that takes
half the budget ends the warm-up and is the reading), and the sizes stop growing once one
all_reduce takes longer than the budget (the sizes left out are listed). Bandwidths follow
nccl-tests: algorithm bandwidth = bytes / time, bus bandwidth = algbw x 2(n-1)/n for all_reduce
over n processes.
Times are the slowest rank's mean. Rank 0 writes one JSON report to --output:

    {"backend": "gloo", "world_size": 4, "nodes": ["node1", "node2"],
     "sizes": [{"bytes": 1048576, "time_us": 812.3, "algbw_gbps": 1.29, "busbw_gbps": 1.94}, ...],
     "sizes_cut": [], "pairs": [{"nodes": ["node1", "node2"], "bytes": 16777216, "time_us": ..., "busbw_gbps": ...,
     "reference_gbps": ..., "retested": false}], "pair_rounds": 1, "pair_retests": 0, "pair_seconds": 0.8, "seed": 12345}

Bandwidths are in GB/s (10^9 bytes per second), as nccl-tests prints them. The schedule
(round_robin, sampled_rounds) needs no torch: torch is imported when the check runs.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import time

FLOAT_BYTES = 4
# A round screens its pairs with a short reading (one warm-up, at most this many timed all_reduces,
# in this share of the budget): it only has to find the pairs under their reference's ratio, and
# those are read again in full, alone.
SCREEN_ITERS = 3
# A node in this many pairs that stayed slow when read alone is slow: its other slow pairs stand.
CONFIRMING = 2
torch = dist = None  # imported by main(): the schedule below is usable (and tested) without torch


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--min-bytes", type=int, default=1 << 20)
    parser.add_argument("--max-bytes", type=int, default=64 << 20)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pairs", action="store_true", help="also time pairs of nodes")
    parser.add_argument("--pair-bytes", type=int, default=16 << 20)
    parser.add_argument("--pair-rounds", type=int, default=0, help="rounds of pairs; 0 measures every pair (round robin)")
    parser.add_argument("--pair-ratio", type=float, default=0.5, help="a pair under this share of its reference is measured again")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds one measurement may take (at least one all_reduce)")
    parser.add_argument("--seed", type=int, default=-1, help="the sampled rounds' seed; -1 picks one (reported)")
    parser.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto")
    parser.add_argument("--output", default="", help="JSON report (rank 0); empty prints it")
    parser.add_argument("--expect-rdma", action="store_true", help="NCCL must use an RDMA network (IB or RoCE), not sockets")
    return parser.parse_args(argv)


def sizes(smallest, largest):
    found, size = [], max(smallest, FLOAT_BYTES)
    while size <= largest:
        found.append(size)
        size *= 4
    if not found or found[-1] != largest:
        found.append(largest)
    return found


def round_robin(n):
    """Every pair of n nodes (indices), in rounds of disjoint pairs (the circle method): n-1 rounds
    of n/2 pairs for even n; n rounds for odd n, one node resting in each."""
    seats = list(range(n)) + ([None] if n % 2 else [])
    rounds = []
    for _round in range(len(seats) - 1):
        pairs = [(seats[i], seats[-1 - i]) for i in range(len(seats) // 2)]
        rounds.append(sorted(tuple(sorted(p)) for p in pairs if None not in p))
        seats = [seats[0], seats[-1]] + seats[1:-1]
    return [r for r in rounds if r]


def round_count(n):
    """How many rounds round_robin(n) takes: n-1 for even n, n for odd n (none for one node)."""
    return 0 if n < 2 else (n - 1 if n % 2 == 0 else n)


def sampled_rounds(n, count, seed):
    """``count`` rounds of disjoint pairs for large clusters: a ring first (each node with its
    neighbours: 2 rounds, 3 for odd n), then random perfect matchings of pairs not yet measured.
    Every pair (round_robin) when that takes no more rounds, or ``count`` is 0."""
    if count <= 0 or count >= round_count(n) or n < 4:
        return round_robin(n)
    ring = [(i, (i + 1) % n) for i in range(n)]
    rounds = [[p for i, p in enumerate(ring) if i % 2 == 0 and i != n - 1], [p for i, p in enumerate(ring) if i % 2 == 1]]
    if n % 2:
        rounds.append([ring[-1]])
    rounds = [sorted(tuple(sorted(p)) for p in r) for r in rounds]
    seen = {p for r in rounds for p in r}
    rng = random.Random(seed)
    tries = 0
    while len(rounds) < count and tries < 20 * count:
        tries += 1
        order = list(range(n))
        rng.shuffle(order)
        pairs = sorted(tuple(sorted(order[i:i + 2])) for i in range(0, n - 1, 2))
        pairs = [p for p in pairs if p not in seen]
        if pairs:
            rounds.append(pairs)
            seen.update(pairs)
    return rounds


def references(rounds, times):
    """Each measured pair's reference, in seconds: the middle reading of its round (the faster of
    the two middle ones) where the round measured two pairs or more at the same time, else the
    rounds' fastest reading. Pairs of one round share the network (and, on small machines, the
    CPUs), so a busy round slows all of its pairs alike while a slow link stays below its round."""
    best = min((times[p] for r in rounds for p in r if p in times), default=0.0)
    found = {}
    for round_pairs in rounds:
        readings = sorted(times[p] for p in round_pairs if p in times)
        middle = readings[(len(readings) - 1) // 2] if len(readings) > 1 else best
        found.update((p, middle) for p in round_pairs if p in times)
    return found, best


def under(ratio, reference, seconds):
    """Whether a reading of ``seconds`` is under ``ratio`` of the bandwidth of ``reference`` seconds."""
    return ratio > 0 and seconds > 0 and reference / seconds < ratio


def by_suspicion(slow):
    """The slow pairs, those of the nodes in the most slow pairs first (a slow node is shown early)."""
    count = collections.Counter(node for pair in slow for node in pair)
    return sorted(slow, key=lambda pair: (-max(count[pair[0]], count[pair[1]]), pair))


def slow_node(confirmed, pair):
    """The node of ``pair`` already in CONFIRMING pairs that stayed slow alone, if any: it explains
    the pair's slow reading in its round, which then stands without being read again (so a slow
    node costs a few readings alone, not one per pair)."""
    return next((node for node in pair if confirmed[node] >= CONFIRMING), None)


def retests(slow, measured, fastest, sampled):
    """What to measure again, alone, one after another: each slow pair; with sampled rounds also each
    of its nodes against a node of the fastest pair, where that pair was not measured."""
    found = list(slow)
    if sampled:
        for a, b in slow:
            reference = next((x for x in fastest if x not in (a, b)), None)
            for node in (a, b):
                pair = tuple(sorted((node, reference))) if reference is not None else None
                if pair is not None and pair not in measured and pair not in found:
                    found.append(pair)
    return found


NCCL_NETWORK = re.compile(r"NCCL INFO Using network (\S+)")
NCCL_DEVICES = re.compile(r"NCCL INFO NET/(\S+) ?: Using (.*?) *(?:;|$)", re.M)
NCCL_PATH = re.compile(r"NCCL INFO Channel \d+(?:/\d+)? : .* via (\S+)")


def nccl_logging(folder):
    """The environment that makes NCCL write, to a file per process in folder, which network and
    devices it chose (NCCL_DEBUG_SUBSYS=INIT,NET) and how each channel connects."""
    return {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,NET", "NCCL_DEBUG_FILE": os.path.join(folder, "nccl.%h.%p.log")}


def transport(text):
    """What one process's NCCL INFO lines say it used: the network (IB, Socket, a plugin's name, or
    'unknown'), the devices of that network (mlx5_0:1/IB, eth0:10.0.0.1<0>) and the channels' paths
    (NET/IB/0/GDRDMA, P2P/CUMEM/read, SHM/direct/direct), each once in the order seen."""
    networks = NCCL_NETWORK.findall(text)
    network = networks[-1] if networks else "unknown"
    devices, paths = [], []
    for name, listed in NCCL_DEVICES.findall(text):
        if name.rstrip() == network:
            # "[0]mlx5_0:1/IB [1]mlx5_1:1/IB [RO]": the numbered entries; [RO] (relaxed ordering) is a flag.
            devices += [device for device in re.findall(r"\[\d+\](\S+)", listed) if device not in devices]
    for path in NCCL_PATH.findall(text):
        if path not in paths:
            paths.append(path)
    return {"network": network, "devices": devices, "paths": paths}


def merged(found):
    """The transports of a node's processes as one: networks joined, devices and paths united."""
    networks = sorted({entry["network"] for entry in found})
    return {"network": "/".join(networks), "devices": sorted({d for entry in found for d in entry["devices"]}),
            "paths": sorted({p for entry in found for p in entry["paths"]})}


def transport_line(node, entry):
    """One line of the health check's output: the node, its network and devices, the channels' paths."""
    return "transport %s: %s%s%s" % (node, entry["network"], " (%s)" % ", ".join(entry["devices"]) if entry["devices"] else "",
                                     " via " + ", ".join(entry["paths"]) if entry["paths"] else "")


def bus_factor(n):
    return 2.0 * (n - 1) / n if n > 1 else 0.0


def timed_all_reduce(nbytes, iters, warmup, device, budget, group=None):
    """Mean seconds per all_reduce of nbytes on this rank, and the slowest warm-up of the group: as
    many iterations as fit ``budget`` seconds by the warm-up's pace (at least one, at most ``iters``).
    With NCCL a group's first collective makes its communicator (seconds at scale), so one untimed
    all_reduce comes first; gloo connects when the group is made."""
    tensor = torch.ones(nbytes // FLOAT_BYTES, dtype=torch.float32, device=device)
    if device.type == "cuda":
        dist.all_reduce(tensor, group=group)
        synchronize(device)
    start = time.perf_counter()
    dist.all_reduce(tensor, group=group)
    synchronize(device)
    first = agreed(time.perf_counter() - start, device, group)
    if first * 2 > budget:  # one all_reduce took half the budget: it is the reading (a slow link costs one)
        return first, first
    start = time.perf_counter()
    for _round in range(max(warmup, 1) - 1):
        dist.all_reduce(tensor, group=group)
    synchronize(device)
    pace = agreed((time.perf_counter() - start + first) / max(warmup, 1), device, group)
    count = max(1, min(iters, int(budget / pace) if pace > 0 else iters))
    start = time.perf_counter()
    for _round in range(count):
        dist.all_reduce(tensor, group=group)
    synchronize(device)
    return (time.perf_counter() - start) / count, pace


def agreed(seconds, device, group=None):
    """The largest of the group's readings: every rank of the group takes the same decision on it."""
    value = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=group)
    return float(value.item())


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def row(nbytes, seconds, n):
    algbw = nbytes / seconds / 1e9
    return {"bytes": nbytes, "time_us": round(seconds * 1e6, 1), "algbw_gbps": round(algbw, 4),
            "busbw_gbps": round(algbw * bus_factor(n), 4)}


def measure_pairs(args, leaders, rank, device):
    """The pair phase: rounds of concurrent pairs, then the slow ones again, alone. Every rank takes
    part in making each round's groups and learns every pair's time (one all_reduce per round)."""
    n = len(leaders)
    sampled = 0 < args.pair_rounds < round_count(n)
    rounds = sampled_rounds(n, args.pair_rounds, args.seed)
    times = {}

    def run(round_pairs, screen=True):
        mine, _groups = dist.new_subgroups_by_enumeration([[leaders[a][2], leaders[b][2]] for a, b in round_pairs])
        seconds = torch.zeros(len(round_pairs), dtype=torch.float64, device=device)
        iters, warmup, budget = ((min(args.iters, SCREEN_ITERS), min(args.warmup, 1), args.budget / SCREEN_ITERS) if screen
                                 else (args.iters, args.warmup, args.budget))
        for index, (a, b) in enumerate(round_pairs):
            if rank in (leaders[a][2], leaders[b][2]):
                seconds[index] = timed_all_reduce(args.pair_bytes, iters, warmup, device, budget, mine)[0]
        dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
        return {pair: float(value) for pair, value in zip(round_pairs, seconds.tolist())}

    start = time.perf_counter()
    for round_pairs in rounds:
        times.update(run(round_pairs))
    reference, best = references(rounds, times)
    slow = [p for p, t in sorted(times.items()) if under(args.pair_ratio, reference[p], t)]
    fastest = min(times, key=times.get)
    confirmed, retested, explained, readings = collections.Counter(), set(), {}, 0
    for pair in retests(by_suspicion(slow), times, fastest, sampled):
        node = slow_node(confirmed, pair)
        if node is not None:  # its node is already shown slow alone: the round's reading stands
            explained[pair] = node
            continue
        reference.setdefault(pair, best)
        retested.add(pair)
        # Read alone, and once more where still slow: alone on busy CPUs one reading can be a
        # tenth of the next, while a slow link stays slow. The better reading counts.
        for _reading in range(2):
            seconds = run([pair], screen=False)[pair]
            times[pair] = min(seconds, times.get(pair, seconds))
            readings += 1
            if not under(args.pair_ratio, reference[pair], times[pair]):
                break
        else:
            confirmed.update(pair)
    rows = []
    for pair in sorted(times):
        rows.append(dict(row(args.pair_bytes, times[pair], 2), nodes=[leaders[pair[0]][1], leaders[pair[1]][1]],
                         reference_gbps=row(args.pair_bytes, reference[pair], 2)["busbw_gbps"], retested=pair in retested))
        if pair in explained:
            rows[-1]["explained_by"] = leaders[explained[pair]][1]
    return rows, {"pair_rounds": len(rounds), "pair_retests": readings, "pair_seconds": round(time.perf_counter() - start, 3)}


def gathered(value, device, world):
    """Every rank's ``value`` (plain JSON data) in rank order, as bytes through all_gather: never
    all_gather_object, which unpickles whatever the others send."""
    data = json.dumps(value).encode("utf-8")
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _rank in range(world)]
    dist.all_gather(sizes, size)
    lengths = [int(s.item()) for s in sizes]
    buffer = torch.zeros(max(lengths), dtype=torch.uint8, device=device)
    buffer[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    buffers = [torch.zeros_like(buffer) for _rank in range(world)]
    dist.all_gather(buffers, buffer)
    return [json.loads(bytes(b[:n].cpu().tolist()).decode("utf-8")) for b, n in zip(buffers, lengths)]


def transports(folder, expect_rdma, world, device):
    """Every node's NCCL transport (after the world's communicator is made): read from this process's
    log, gathered, printed by rank 0; the folder is removed."""
    text = ""
    for path in glob.glob(os.path.join(folder, "*")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            text += handle.read()
    shutil.rmtree(folder, ignore_errors=True)
    everyone = gathered([socket.gethostname(), transport(text)], device, world)
    nodes = {}
    for host, entry in everyone:
        nodes.setdefault(host, []).append(entry)
    found = {host: merged(entries) for host, entries in sorted(nodes.items())}
    if dist.get_rank() == 0:
        for host, entry in found.items():
            print(transport_line(host, entry), flush=True)
    return {"transport": found, "transport_expected": "rdma" if expect_rdma else "any"}


def main(argv=None):
    global torch, dist  # pylint: disable=global-statement
    import torch  # pylint: disable=import-outside-toplevel,redefined-outer-name
    import torch.distributed as dist  # pylint: disable=import-outside-toplevel,redefined-outer-name

    args = parse_args(argv if argv is not None else sys.argv[1:])
    backend = args.backend
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    nccl_folder = None
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        nccl_folder = tempfile.mkdtemp(prefix="nccl-")  # read back below: which network NCCL chose
        os.environ.update(nccl_logging(nccl_folder))
    else:
        device = torch.device("cpu")
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()

    # Who runs where: the nodes in group-rank order, and each node's first process; rank 0's seed.
    me = [int(os.environ.get("GROUP_RANK", "0")), local_rank, socket.gethostname(), rank,
          args.seed if args.seed >= 0 else random.SystemRandom().randrange(1 << 31)]
    everyone = gathered(me, device, world)
    args.seed = next(seed for _g, _l, _h, r, seed in everyone if r == 0)
    leaders = sorted((group_rank, host, r) for group_rank, local, host, r, _s in everyone if local == 0)
    nodes = [host for _g, host, _r in leaders]

    report = {"backend": backend, "world_size": world, "nodes": nodes, "torch": torch.__version__,
              "nccl": ".".join(map(str, torch.cuda.nccl.version())) if backend == "nccl" else None,
              "sizes": [], "sizes_cut": [], "pairs": [], "budget_seconds": args.budget, "seed": args.seed}
    wanted = sizes(args.min_bytes, args.max_bytes)
    for index, nbytes in enumerate(wanted):
        seconds, pace = timed_all_reduce(nbytes, args.iters, args.warmup, device, args.budget)
        seconds = agreed(seconds, device)
        report["sizes"].append(row(nbytes, seconds, world))
        if rank == 0:
            print("all_reduce %10d B  %10.1f us  busbw %.3f GB/s" % (nbytes, seconds * 1e6, report["sizes"][-1]["busbw_gbps"]),
                  flush=True)
        if pace > args.budget:  # one all_reduce took longer than a whole measurement may: larger ones are left out
            report["sizes_cut"] = wanted[index + 1:]
            break

    if nccl_folder:
        report.update(transports(nccl_folder, args.expect_rdma, world, device))

    if args.pairs and len(leaders) > 1:
        report["pairs"], phase = measure_pairs(args, leaders, rank, device)
        report.update(phase)
        if rank == 0:
            for pair in report["pairs"]:
                print("pair %s  busbw %.3f GB/s%s" % ("-".join(pair["nodes"]), pair["busbw_gbps"], " (measured again)" if pair["retested"] else ""),
                      flush=True)

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
