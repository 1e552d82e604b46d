"""The health check's pair schedule (roles/healthcheck/files/collective_bench.py), without torch:
every pair in n-1 rounds of disjoint pairs, a bounded sample for large clusters, and what is
measured again when a pair is slow."""

import importlib.util
import itertools
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[3] / "roles" / "healthcheck" / "files" / "collective_bench.py"
spec = importlib.util.spec_from_file_location("collective_bench", PATH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def disjoint(rounds):
    return all(len({n for pair in r for n in pair}) == 2 * len(r) for r in rounds)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 16, 17, 64, 200])
def test_round_robin_measures_every_pair_once_in_n_minus_1_rounds(n):
    rounds = bench.round_robin(n)
    pairs = [p for r in rounds for p in r]
    assert sorted(pairs) == list(itertools.combinations(range(n), 2))
    assert disjoint(rounds)
    assert len(rounds) == (n - 1 if n % 2 == 0 else n) == bench.round_count(n)
    assert all(len(r) == n // 2 for r in rounds)  # every round as full as it can be


@pytest.mark.parametrize("n, count", [(16, 4), (17, 5), (128, 6), (512, 8)])
def test_sampled_rounds_are_a_ring_and_matchings_in_the_rounds_asked_for(n, count):
    rounds = bench.sampled_rounds(n, count, seed=7)
    pairs = [p for r in rounds for p in r]
    assert len(rounds) == count and disjoint(rounds)
    assert len(pairs) == len(set(pairs))  # no pair twice
    ring = {tuple(sorted((i, (i + 1) % n))) for i in range(n)}
    assert ring <= set(pairs)  # each node with both neighbours
    assert all(sum(node in p for p in pairs) >= 2 for node in range(n))
    assert bench.sampled_rounds(n, count, seed=7) == rounds  # the seed reproduces the sample
    assert len(pairs) < n * (n - 1) // 2


def test_as_many_rounds_as_every_pair_takes_is_every_pair():
    assert bench.sampled_rounds(8, 0, seed=1) == bench.round_robin(8)
    assert bench.sampled_rounds(8, 7, seed=1) == bench.round_robin(8)
    assert bench.sampled_rounds(3, 2, seed=1) == bench.round_robin(3)


def test_a_slow_pair_is_measured_again_and_in_a_sample_each_node_against_the_fastest():
    measured = {(0, 1): 1.0, (2, 3): 1.0, (1, 2): 9.0, (0, 3): 1.0}
    assert bench.retests([(1, 2)], measured, (0, 3), sampled=False) == [(1, 2)]
    again = bench.retests([(1, 2)], measured, (0, 3), sampled=True)
    # node 1 with 0 is measured already; node 2 with 0 is not: the slow pair, then (0, 2).
    assert again == [(1, 2), (0, 2)]


def test_sizes_grow_by_four_up_to_the_largest():
    assert bench.sizes(1 << 20, 64 << 20) == [1 << 20, 4 << 20, 16 << 20, 64 << 20]
    assert bench.sizes(1 << 20, 5 << 20) == [1 << 20, 4 << 20, 5 << 20]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nccl"


@pytest.mark.parametrize("log, network, devices, paths", [
    ("ib.log", "IB", ["mlx5_0:1/IB", "mlx5_1:1/IB", "mlx5_2:1/IB", "mlx5_3:1/IB"],
     ["NET/IB/0/GDRDMA", "P2P/CUMEM/read", "NET/IB/1/GDRDMA"]),
    ("roce.log", "IB", ["mlx5_0:1/RoCE", "mlx5_1:1/RoCE"], ["NET/IB/0"]),
    # NCCL 2.28 on an H200 VM without HCAs: IB lists no device ("Using [RO]") and sockets win.
    ("h200_vm_socket.log", "Socket", ["eth0:192.0.2.2<0>"], []),
    ("socket.log", "Socket", ["eth0:10.0.0.3<0>", "eth1:10.1.0.3<0>"], ["NET/Socket/0", "SHM/direct/direct"]),
])
def test_the_transport_is_read_from_nccls_info_lines(log, network, devices, paths):
    found = bench.transport((FIXTURES / log).read_text())
    assert found == {"network": network, "devices": devices, "paths": paths}


def test_a_log_without_ncclss_lines_says_unknown():
    assert bench.transport("NCCL WARN something\n") == {"network": "unknown", "devices": [], "paths": []}


def test_a_nodes_processes_are_merged_and_printed_on_one_line():
    entry = bench.merged([bench.transport((FIXTURES / "roce.log").read_text()), bench.transport((FIXTURES / "ib.log").read_text())])
    assert entry["network"] == "IB" and "mlx5_3:1/IB" in entry["devices"] and "mlx5_0:1/RoCE" in entry["devices"]
    line = bench.transport_line("gpu07", bench.transport((FIXTURES / "roce.log").read_text()))
    assert line == "transport gpu07: IB (mlx5_0:1/RoCE, mlx5_1:1/RoCE) via NET/IB/0"


def test_the_logging_environment_writes_a_file_per_process():
    env = bench.nccl_logging("/tmp/x")
    assert env == {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,NET", "NCCL_DEBUG_FILE": "/tmp/x/nccl.%h.%p.log"}
