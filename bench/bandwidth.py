"""The health check's bandwidth against a raw all_reduce loop and iperf3, and a throttled node.

On a converged 3-node cluster, between node1 and node2, in the same run, alternating which goes first:
- ours: playbooks/healthcheck.yml; its pair row node1-node2 (one process per node, all_reduce of
  --bytes through torchrun, started by systemd-run on every node);
- raw: bench/allreduce_loop.py started by hand on node1 and node2 (gloo, one process each, the
  same message size and number of calls), no torchrun and no Ansible;
- iperf3: one TCP stream node1 -> node2 for 5 s, on a port of the collective range (the only
  ports the firewall opens between nodes besides the master port), for scale: the link itself.
Then node3's interface is throttled with tc and the health check must name node3 alone.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import ROOT, TORCHRUN, BenchError, cluster, log, median, on_all, playbook, put, result, sb, ssh

PAIR = ["node1", "node2"]
RAW_PORT = 52010  # in torchrun_collective_port_range: open between the nodes, free while no job runs
IPERF_PORT = 52020
VENV_PYTHON = TORCHRUN["torchrun_venv"] + "/bin/python"


def healthcheck(report: Path, nbytes: int, iters: int, **extra) -> dict:
    settings = dict(healthcheck_min_bytes=nbytes, healthcheck_max_bytes=nbytes, healthcheck_pair_bytes=nbytes,
                    healthcheck_iters=iters, healthcheck_warmup=3, healthcheck_report=str(report), **extra)
    try:
        playbook("healthcheck", "-e", json.dumps(settings))
    except BenchError:
        if not extra:
            raise
    return json.loads(report.read_text())


def pair_gbps(report: dict) -> float:
    for row in report["report"]["pairs"]:
        if row["nodes"] == PAIR:
            return row["bytes"] / (row["time_us"] / 1e6) / 1e9
    raise BenchError("the health check report has no %s pair: %s" % ("-".join(PAIR), report["report"]["pairs"]))


def raw_gbps(nbytes: int, iters: int) -> float:
    master = sb.address_of(PAIR[0])
    outs = on_all(PAIR, lambda rank: (
        "cd /root && MASTER_ADDR=%s MASTER_PORT=%d RANK=%d WORLD_SIZE=2 GLOO_SOCKET_IFNAME=host0 OMP_NUM_THREADS=1 "
        "%s allreduce_loop.py --bytes %d --iters %d --warmup 3" % (master, RAW_PORT, rank, VENV_PYTHON, nbytes, iters)))
    seconds = float(outs[0].stdout.split("seconds_per_call=")[1].split()[0])
    return nbytes / seconds / 1e9


def iperf3_gbps() -> float:
    ssh(PAIR[1], "iperf3 --server --one-off --daemon --port %d" % IPERF_PORT)
    out = ssh(PAIR[0], "sleep 0.5; iperf3 --client %s --port %d --time 5 --json" % (sb.address_of(PAIR[1]), IPERF_PORT)).stdout
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 8 / 1e9


def run(repeat: int, nbytes: int = 16 << 20, iters: int = 50) -> list[dict]:
    log("bandwidth: a converged 3-node cluster")
    nodes = cluster(3, seed=True)
    playbook("setup")
    script = (ROOT / "bench" / "allreduce_loop.py").read_text()
    for node in PAIR:
        put(node, "/root/allreduce_loop.py", script)
    on_all(PAIR, "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null")
    ours, raw, link = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        # Two rounds more than the other benchmarks: on two shared cores a pair's bandwidth varies
        # by a third between runs. The order alternates, so that a drift does not favour one side.
        for index in range(repeat + 2):
            if index % 2:
                raw.append(raw_gbps(nbytes, iters))
                ours.append(pair_gbps(healthcheck(report, nbytes, iters)))
            else:
                ours.append(pair_gbps(healthcheck(report, nbytes, iters)))
                raw.append(raw_gbps(nbytes, iters))
            link.append(iperf3_gbps())
        log("bandwidth: ours %s, raw %s, iperf3 %s GB/s" % (ours, raw, link))
        ssh("node3", "tc qdisc add dev host0 root tbf rate 50mbit burst 64kb latency 100ms")
        try:
            throttled = healthcheck(report, 4 << 20, 5, healthcheck_fail_on="degraded")
        finally:
            ssh("node3", "tc qdisc del dev host0 root", check=False)
    suspects = throttled.get("suspects", [])
    return [
        result("healthcheck_bw", "Health check pair bandwidth vs a raw all_reduce loop (%d MiB, node1-node2)" % (nbytes >> 20),
               median(ours), median(raw), 0.10, unit="GB/s", ours_runs=[round(g, 3) for g in ours],
               baseline_runs=[round(g, 3) for g in raw], iperf3_gbps=round(median(link), 3),
               iperf3_runs=[round(g, 3) for g in link]),
        {"key": "throttled", "title": "A node throttled to 50 Mbit/s with tc is named by the health check",
         "ours": ", ".join(suspects) or "nobody", "baseline": "node3", "unit": "", "ratio": None, "target": None,
         "met": suspects == ["node3"], "details": {"status": throttled.get("status"), "reasons": throttled.get("reasons"),
                                                   "nodes": nodes}},
    ]
