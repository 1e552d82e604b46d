#!/usr/bin/env python3
"""Benchmarks of the collection's own speed and scale on the sandbox (`make bench`).

Each benchmark times ours against a baseline in the same run and compares the ratio with its
target (docs/benchmarks/README.md says what each measures and what was learnt). Writes
docs/benchmarks/results.md (a table), results.json, benchmarks.png and cost-model.md (bench/model.py). Needs root; boots and
tears down sandboxes of up to 16 nodes; about 40 minutes on 2 cores.

    .venv/bin/python bench/run.py [--only scale,relaunch,edit_to_train,bandwidth,cold] [--sizes 2,4,8,16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import bandwidth
import cold
import edit
import model
import relaunch
import report
import scale
from common import ROOT, BenchError, log, sandbox

BENCHMARKS = ("scale", "relaunch", "edit_to_train", "bandwidth", "cold")  # scale first: it makes the seed layer the next two boot on


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of %s" % ", ".join(BENCHMARKS))
    parser.add_argument("--sizes", default="2,4,8,16", help="cluster sizes of the scale benchmark")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (the median is kept)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks"))
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error("unknown benchmark %s; choose from %s" % (", ".join(unknown), ", ".join(BENCHMARKS)))
    sizes = [int(size) for size in args.sizes.split(",")]
    out = Path(args.out)
    started = time.time()
    results: list[dict] = []
    try:
        for name in (b for b in BENCHMARKS if b in chosen):
            if name == "scale":
                results += scale.run(sizes, args.repeat)
            elif name == "relaunch":
                results += relaunch.run(args.repeat)
            elif name == "edit_to_train":
                results += edit.run(args.repeat)
            elif name == "bandwidth":
                results += bandwidth.run(args.repeat)
            else:
                results += cold.run()
    except BenchError as err:
        print("bench: error: %s" % err, file=sys.stderr)
        return 2
    finally:
        sandbox("down")
    run_info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "minutes": round((time.time() - started) / 60, 1),
                "machine": "%s, %s, %d cores" % (platform.system(), platform.machine(), os.cpu_count() or 0), "repeat": args.repeat}
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "results.json"
    if previous.exists() and set(chosen) != set(BENCHMARKS):
        # A partial run keeps the other benchmarks' last figures.
        kept = [r for r in json.loads(previous.read_text())["results"] if r["key"] not in {x["key"] for x in results}]
        results = kept + results
    (out / "results.json").write_text(json.dumps({"run": run_info, "results": results}, indent=1) + "\n")
    report.write(out, run_info, results)
    if any(r["key"] == "scale_converge" for r in results):
        model.main(["--results", str(out / "results.json"), "--out", str(out / "cost-model.md")])
    for row in results:
        log("%-20s %s" % (row["key"], "met" if row["met"] else "MISSED") + (" (ratio %.2f, target %s)" % (row["ratio"], row["target"]) if row["ratio"] is not None else ""))
    log("wrote %s" % ", ".join(str(out / f) for f in ("results.md", "results.json", "benchmarks.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
