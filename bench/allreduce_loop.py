"""The baseline of the health check's bandwidth: a bare torch.distributed all_reduce loop.

One process per node, started by hand (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE in the
environment; no torchrun, no Ansible), gloo on the CPU. It times --iters all_reduce calls of
--bytes after --warmup rounds and prints, on rank 0, the slowest rank's mean seconds per call.
"""

import argparse
import time

import torch
import torch.distributed as dist


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bytes", type=int, required=True)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    tensor = torch.ones(args.bytes // 4, dtype=torch.float32)
    for _round in range(args.warmup):
        dist.all_reduce(tensor)
    dist.barrier()
    start = time.perf_counter()
    for _round in range(args.iters):
        dist.all_reduce(tensor)
    seconds = torch.tensor([(time.perf_counter() - start) / args.iters], dtype=torch.float64)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    if dist.get_rank() == 0:
        print("seconds_per_call=%.9f" % seconds.item(), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
