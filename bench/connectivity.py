#!/usr/bin/env python3
"""Benchmark: does the all-pairs connectivity check grow with the nodes, not with the pairs?

Boots sandboxes of 2, 4 and 8 nodes (or --sizes), runs the connectivity role against each
(`playbooks/setup.yml --tags connectivity`, facts and preflight included) --repeat times, and
prints the median wall time of each size as a ratio to the smallest size, beside the ratio of
directed pairs probed. Each node probes its peers at once, so the time ratio should stay near 1
while the pair ratio grows with the square of the nodes. Needs root; leaves the sandbox down.

    .venv/bin/python bench/connectivity.py [--sizes 2,4,8] [--repeat 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = [sys.executable, str(ROOT / "sandbox" / "sandbox.py")]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def run_check():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    start = time.perf_counter()
    proc = subprocess.run([str(PLAYBOOK), "playbooks/setup.yml", "-i", "inventories/sandbox", "--tags", "connectivity"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit("connectivity check failed:\n" + proc.stdout[-3000:])
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4,8")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    rows = []
    try:
        for size in sizes:
            subprocess.run(SANDBOX + ["up", "--nodes", str(size)], check=True, capture_output=True)
            run_check()  # warm-up: SSH control sockets, fact cache
            times = [run_check() for _ in range(args.repeat)]
            rows.append((size, size * (size - 1), statistics.median(times)))
    finally:
        subprocess.run(SANDBOX + ["down"], check=False, capture_output=True)
    base_pairs, base_time = rows[0][1], rows[0][2]
    print("%5s %6s %10s %10s %10s" % ("nodes", "pairs", "median s", "time x", "pairs x"))
    for size, pairs, median in rows:
        print("%5d %6d %10.1f %10.2f %10.1f" % (size, pairs, median, median / base_time, pairs / base_pairs))


if __name__ == "__main__":
    main()
