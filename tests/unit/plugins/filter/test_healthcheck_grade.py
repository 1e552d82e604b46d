"""healthcheck_grade: thresholds, the slow node named among pairs, a slow link, the table."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.healthcheck_grade import healthcheck_grade


def report(pairs=(), busbw=2.0, nodes=("node1", "node2", "node3")):
    return {"backend": "gloo", "world_size": 2 * len(nodes), "nodes": list(nodes),
            "sizes": [{"bytes": 1 << 20, "time_us": 900.0, "algbw_gbps": 1.0, "busbw_gbps": 1.5},
                      {"bytes": 64 << 20, "time_us": 50000.0, "algbw_gbps": 1.2, "busbw_gbps": busbw}],
            "pairs": [{"nodes": list(p[:2]), "bytes": 16 << 20, "time_us": 1.0, "busbw_gbps": p[2]} for p in pairs]}


HEALTHY = [("node1", "node2", 1.0), ("node1", "node3", 0.95), ("node2", "node3", 0.9)]
NODE3_SLOW = [("node1", "node2", 1.0), ("node1", "node3", 0.1), ("node2", "node3", 0.12)]


def test_healthy_cluster_passes():
    grade = healthcheck_grade(report(HEALTHY), fail_below_gbps=1, degraded_below_gbps=1.5)
    assert grade["status"] == "pass" and grade["reasons"] == [] and grade["suspects"] == []
    assert grade["table"][0].split()[:2] == ["all_reduce", "processes"] and "64 MiB" in grade["table"][2]


def test_thresholds_grade_fail_and_degraded():
    assert healthcheck_grade(report(HEALTHY, busbw=0.5), fail_below_gbps=1)["status"] == "fail"
    degraded = healthcheck_grade(report(HEALTHY, busbw=1.2), fail_below_gbps=1, degraded_below_gbps=1.5)
    assert degraded["status"] == "degraded"
    assert "1.200 GB/s is below healthcheck_degraded_below_gbps=1.5" in degraded["reasons"][0]


def test_the_node_in_every_slow_pair_is_named():
    grade = healthcheck_grade(report(NODE3_SLOW))
    assert grade["status"] == "degraded" and grade["suspects"] == ["node3"]
    assert grade["slow_pairs"] == ["node1-node3", "node2-node3"]
    assert grade["reasons"] == ["node3: every pair with it is slow (0.100, 0.120 GB/s; their reference 1.000 GB/s)"]
    assert any(line.startswith("node1-node3") and line.endswith("SLOW") for line in grade["table"])


def test_one_slow_link_is_named_as_a_link():
    grade = healthcheck_grade(report([("node1", "node2", 1.0), ("node1", "node3", 1.0), ("node2", "node3", 0.2)]))
    assert grade["suspects"] == [] and grade["reasons"] == [
        "link node2-node3: 0.200 GB/s, under 0.5 of its reference (1.000 GB/s)"]


def test_two_nodes_name_the_link_not_a_node():
    grade = healthcheck_grade(report([("node1", "node2", 1.0)], nodes=("node1", "node2")), degraded_below_gbps=3)
    assert grade["suspects"] == [] and grade["status"] == "degraded"


def test_a_report_without_sizes_is_an_error():
    with pytest.raises(AnsibleFilterError, match="no all_reduce sizes"):
        healthcheck_grade({"pairs": []})


def test_sizes_left_out_for_the_time_budget_grade_degraded_and_the_rounds_are_shown():
    cut = dict(report(HEALTHY), sizes_cut=[256 << 20], budget_seconds=3.0, pair_rounds=3, pair_retests=1, pair_seconds=2.5)
    cut["pairs"][2]["retested"] = True
    grade = healthcheck_grade(cut)
    assert grade["status"] == "degraded"
    assert grade["reasons"] == ["all_reduce of 64 MiB took longer than the time budget (3.0 s); larger sizes left out: 256 MiB"]
    assert any(line.startswith("node2-node3") and line.endswith("(measured again)") for line in grade["table"])
    assert grade["table"][-1] == "pairs: 3 in 3 round(s) of pairs measured at the same time, 1 reading(s) alone; 2.5 s"
    assert healthcheck_grade(cut, fail_below_gbps=5)["status"] == "fail"  # a failing grade stays failing


IB = {"network": "IB", "devices": ["mlx5_0:1/RoCE"], "paths": ["NET/IB/0"]}
SOCKET = {"network": "Socket", "devices": ["eth0:10.0.0.2<0>"], "paths": ["NET/Socket/0"]}


def test_sockets_where_rdma_is_expected_fail_the_node_by_name():
    found = dict(report(HEALTHY), transport={"node1": IB, "node2": SOCKET, "node3": IB}, transport_expected="rdma")
    grade = healthcheck_grade(found)
    assert grade["status"] == "fail"
    assert grade["reasons"] == [grade["reasons"][0]] and grade["reasons"][0].startswith(
        "node2: NCCL used Socket (eth0:10.0.0.2<0>) where RDMA ports are active (torchrun_fabric)")
    assert " ".join(grade["table"][-4].split()) == "node network devices paths"
    assert " ".join(grade["table"][-2].split()) == "node2 Socket eth0:10.0.0.2<0> NET/Socket/0"


def test_sockets_pass_where_no_rdma_is_expected_and_an_unknown_network_fails_where_it_is():
    assert healthcheck_grade(dict(report(HEALTHY), transport={"node1": SOCKET}, transport_expected="any"))["status"] == "pass"
    unknown = {"network": "unknown", "devices": [], "paths": []}
    grade = healthcheck_grade(dict(report(HEALTHY), transport={"node1": IB, "node2": unknown}, transport_expected="rdma"))
    assert grade["status"] == "fail" and grade["reasons"][0].startswith("node2: NCCL used unknown where")


def sixteen_nodes_node9_throttled():
    """The bench's 16-node sandbox with node9 at 50 Mbit/s (2026-11-30: graded DEGRADED, nobody named).

    On two shared cores a round of 8 pairs measures each healthy pair at about 0.15 GB/s; most of
    them fell under 0.2 of the round's fastest (0.8 GB/s) and were measured again alone, where a
    pair has the cores to itself (about 0.9 GB/s). Compared with that, the healthy pairs of the
    rounds (0.17 GB/s) are "slow" too, no node explains them all, and node9 was hidden."""
    nodes = ["node%d" % i for i in range(1, 17)]
    pairs = []
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            if "node9" in (a, b):
                pairs.append({"nodes": [a, b], "busbw_gbps": 0.006, "retested": True})
            elif (i + len(b)) % 3 == 0:
                pairs.append({"nodes": [a, b], "busbw_gbps": 0.17, "retested": False})
            else:
                pairs.append({"nodes": [a, b], "busbw_gbps": 0.9, "retested": True})
    pairs[0] = dict(pairs[0], busbw_gbps=0.8, retested=False)  # the rounds' fastest pair
    out = report(nodes=nodes)
    out["pairs"] = [dict(p, bytes=4 << 20, time_us=1.0) for p in pairs]
    return out


def test_a_pair_measured_again_alone_is_not_the_yardstick_of_the_pairs_measured_in_rounds():
    grade = healthcheck_grade(sixteen_nodes_node9_throttled(), pair_ratio=0.2)
    assert grade["suspects"] == ["node9"], grade["reasons"][:5]
    assert sorted(grade["slow_pairs"]) == sorted("-".join(sorted(("node9", "node%d" % i), key=lambda n: int(n[4:])))
                                                 for i in range(1, 17) if i != 9)
    assert grade["reasons"][0].startswith("node9: every pair with it is slow (0.006, ")
    assert grade["reasons"][0].endswith("; their reference 0.800 GB/s)")


def test_a_slow_node_is_named_beside_an_unrelated_slow_link():
    nodes = ("node1", "node2", "node3", "node4")
    pairs = [("node1", "node2", 1.0), ("node1", "node3", 1.0), ("node2", "node3", 0.2),
             ("node1", "node4", 0.05), ("node2", "node4", 0.05), ("node3", "node4", 0.05)]
    grade = healthcheck_grade(report(pairs, nodes=nodes))
    assert grade["suspects"] == ["node4"]
    assert grade["reasons"][1:] == ["link node2-node3: 0.200 GB/s, under 0.5 of its reference (1.000 GB/s)"]


def test_each_pair_is_compared_with_its_rounds_reference_not_the_fastest_of_all():
    # A busy round (8 pairs on 2 cores) read 0.3 GB/s for every pair; another round 1.2 GB/s.
    # Against the fastest of all, the busy round's pairs were "slow"; against their round, none is.
    nodes = ("node1", "node2", "node3", "node4")
    out = report(nodes=nodes)
    out["pairs"] = [{"nodes": ["node1", "node2"], "bytes": 1, "time_us": 1.0, "busbw_gbps": 0.3, "reference_gbps": 0.3},
                    {"nodes": ["node3", "node4"], "bytes": 1, "time_us": 1.0, "busbw_gbps": 0.28, "reference_gbps": 0.3},
                    {"nodes": ["node1", "node3"], "bytes": 1, "time_us": 1.0, "busbw_gbps": 1.2, "reference_gbps": 1.2},
                    {"nodes": ["node2", "node4"], "bytes": 1, "time_us": 1.0, "busbw_gbps": 0.1, "reference_gbps": 1.2}]
    grade = healthcheck_grade(out)
    assert grade["slow_pairs"] == ["node2-node4"]
    assert grade["reasons"] == ["link node2-node4: 0.100 GB/s, under 0.5 of its reference (1.200 GB/s)"]
    assert any(line.split()[:1] == ["node3-node4"] and "93%" in line.split() for line in grade["table"]), grade["table"]
    # Without references (an older report) the fastest pair is everyone's yardstick.
    for pair in out["pairs"]:
        del pair["reference_gbps"]
    assert healthcheck_grade(out)["slow_pairs"] == ["node1-node2", "node3-node4", "node2-node4"]


def test_pairs_explained_by_a_node_that_stayed_slow_alone_count_and_say_so():
    nodes = ("node1", "node2", "node3", "node4")
    out = report(nodes=nodes)
    out["pairs"] = [dict(nodes=list(p[:2]), bytes=1, time_us=1.0, busbw_gbps=p[2], reference_gbps=p[3], retested=p[4], **p[5])
                    for p in (("node1", "node2", 1.0, 1.0, False, {}), ("node3", "node4", 0.006, 0.9, True, {}),
                              ("node1", "node3", 0.95, 0.95, False, {}), ("node2", "node4", 0.006, 0.95, True, {}),
                              ("node1", "node4", 0.006, 1.1, False, {"explained_by": "node4"}), ("node2", "node3", 1.1, 1.1, False, {}))]
    grade = healthcheck_grade(out)
    assert grade["suspects"] == ["node4"] and grade["status"] == "degraded"
    assert grade["reasons"] == ["node4: every pair with it is slow (0.006, 0.006, 0.006 GB/s; their reference 0.900-1.100 GB/s)"]
    assert any(line.startswith("node1-node4") and line.endswith("SLOW (node4 stayed slow alone)") for line in grade["table"])
