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


def test_each_pair_is_compared_with_the_middle_pair_of_its_round():
    # Round one was busy (a 2-core host running 4 pairs at once); round two had node 5 slow.
    rounds = [[(0, 1), (2, 3), (4, 5), (6, 7)], [(0, 2), (1, 3), (4, 6), (5, 7)], [(0, 7)]]
    times = {(0, 1): 0.04, (2, 3): 0.05, (4, 5): 0.06, (6, 7): 0.08,
             (0, 2): 0.01, (1, 3): 0.012, (4, 6): 0.011, (5, 7): 0.5, (0, 7): 0.02}
    found, best = bench.references(rounds, times)
    assert best == 0.01
    assert {found[p] for p in rounds[0]} == {0.05}  # the faster middle reading of four
    assert {found[p] for p in rounds[1]} == {0.011}
    assert found[(0, 7)] == best  # alone in its round: the fastest of the rounds
    slow = [p for p in sorted(times) if bench.under(0.5, found[p], times[p])]
    assert slow == [(5, 7)]  # the busy round's 0.08 is not slow against its own round
    assert [p for p in sorted(times) if bench.under(0.5, best, times[p])] != slow  # against the fastest of all it was
    assert not bench.under(0, 0.01, 1.0)  # a ratio of 0 turns the comparison off


def test_a_slow_node_costs_two_confirmed_readings_and_explains_its_other_pairs():
    slow = [(0, 5), (1, 2), (1, 5), (2, 5), (3, 5), (4, 5)]
    ordered = bench.by_suspicion(slow)
    assert ordered[:5] == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 5)] and ordered[5] == (1, 2)
    confirmed = bench.collections.Counter()
    assert bench.slow_node(confirmed, (0, 5)) is None
    confirmed.update((0, 5))
    assert bench.slow_node(confirmed, (1, 5)) is None  # one pair is a link's word, not a node's
    confirmed.update((1, 5))
    assert bench.CONFIRMING == 2 and bench.slow_node(confirmed, (2, 5)) == 5
    assert bench.slow_node(confirmed, (1, 2)) is None  # node 1 is in one confirmed pair only


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


class FakeTensor:
    def __init__(self, values):
        self.values = list(values)

    def item(self):
        return self.values[0]


class FakeTorch:
    float32 = float64 = None

    class cuda:  # noqa: N801 - torch's own name
        @staticmethod
        def synchronize(device):
            pass

    @staticmethod
    def ones(count, dtype=None, device=None):
        return FakeTensor([1.0] * 1)

    @staticmethod
    def tensor(values, dtype=None, device=None):
        return FakeTensor(values)


class FakeDist:
    """all_reduce of data takes the next of ``seconds`` (the last one repeats) on the fake clock;
    the small agreement all_reduces take no time and keep their value (one rank)."""

    class ReduceOp:
        MAX = "max"

    def __init__(self, clock, seconds):
        self.clock, self.seconds, self.data_calls = clock, list(seconds), 0

    def all_reduce(self, tensor, op=None, group=None):
        if op is None:
            self.clock.now += self.seconds[min(self.data_calls, len(self.seconds) - 1)]
            self.data_calls += 1


class Device:
    def __init__(self, kind):
        self.type = kind


@pytest.fixture
def fake(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench, "torch", FakeTorch)
    monkeypatch.setattr(bench.time, "perf_counter", clock.perf_counter)

    def make(seconds):
        dist = FakeDist(clock, seconds)
        monkeypatch.setattr(bench, "dist", dist)
        return dist
    return make


def test_a_slow_link_costs_one_all_reduce_which_is_its_reading(fake):
    dist = fake([2.7])  # 16 MiB at 50 Mbit/s, budget 3 s: the warm-up used to take three of them
    seconds, pace = bench.timed_all_reduce(16 << 20, iters=10, warmup=3, device=Device("cpu"), budget=3.0)
    assert (seconds, pace, dist.data_calls) == (2.7, 2.7, 1)


def test_a_healthy_link_warms_up_then_runs_what_fits_the_budget(fake):
    dist = fake([0.02])
    seconds, _pace = bench.timed_all_reduce(16 << 20, iters=10, warmup=3, device=Device("cpu"), budget=3.0)
    assert dist.data_calls == 3 + 10 and seconds == pytest.approx(0.02)


def test_with_nccl_the_communicators_first_collective_is_not_a_reading(fake):
    # NCCL makes a group's communicator on its first collective: 2 s here, then 0.01 s each.
    dist = fake([2.0, 0.01])
    seconds, pace = bench.timed_all_reduce(16 << 20, iters=10, warmup=1, device=Device("cuda"), budget=3.0)
    assert seconds == pytest.approx(0.01) and pace == pytest.approx(0.01) and dist.data_calls == 1 + 1 + 10
    dist = fake([2.0, 0.01])  # on the CPU (gloo) that first all_reduce would have been the reading
    assert bench.timed_all_reduce(16 << 20, iters=10, warmup=1, device=Device("cpu"), budget=3.0)[0] == 2.0
