"""healthcheck_svg and connectivity_svg: the pictures beside the reports, the slow node's row and column marked."""

import xml.etree.ElementTree as ET

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.connectivity_svg import FilterModule as Connectivity, connectivity_svg
from ansible_collections.onprem.torchrun.plugins.filter.healthcheck_grade import healthcheck_grade
from ansible_collections.onprem.torchrun.plugins.filter.healthcheck_svg import FilterModule as Healthcheck, healthcheck_svg
from ansible_collections.onprem.torchrun.plugins.filter.probe_matrix import probe_matrix

NS = {"s": "http://www.w3.org/2000/svg"}


def graded(pairs, nodes):
    report = {"backend": "gloo", "world_size": 2 * len(nodes), "nodes": list(nodes),
              "sizes": [{"bytes": 64 << 20, "time_us": 5.0, "algbw_gbps": 1.0, "busbw_gbps": 1.5}],
              "pairs": [{"nodes": list(p[:2]), "bytes": 16 << 20, "time_us": 1.0, "busbw_gbps": p[2]} for p in pairs]}
    return dict(healthcheck_grade(report), report=report)


def parse(text):
    return ET.fromstring(text)


def marked(root):
    """(node, axis) of every marked label and every outline."""
    labels = {(e.get("data-node"), e.get("data-axis")) for e in root.iter("{%s}text" % NS["s"]) if "marked" in (e.get("class") or "")}
    outlines = {(e.get("data-node"), e.get("data-axis")) for e in root.iter("{%s}rect" % NS["s"]) if e.get("class") == "outline"}
    return labels, outlines


def cells(root):
    return {(g.get("data-row"), g.get("data-column")): g for g in root.iter("{%s}g" % NS["s"])}


def test_the_slow_node_is_outlined_along_its_row_and_its_column_and_its_pairs_are_slow():
    nodes = ["node1", "node2", "node3", "node4"]
    pairs = [(a, b, 0.1 if "node3" in (a, b) else 1.0) for i, a in enumerate(nodes) for b in nodes[i + 1:]]
    root = parse(healthcheck_svg(graded(pairs, nodes)))
    labels, outlines = marked(root)
    assert labels == outlines == {("node3", "row"), ("node3", "column")}
    grid = cells(root)
    assert len(grid) == 12  # 4 x 4 without the diagonal
    slow = {key for key, g in grid.items() if "slow" in g.get("class").split()}
    assert slow == {(a, b) for a in nodes for b in nodes if a != b and "node3" in (a, b)}
    assert grid[("node1", "node3")].find("s:title", NS).text == "node1-node3: 0.100 GB/s, reference 1.000 GB/s, SLOW"
    # Slow is red, at the reference green.
    fill = {key: g.find("s:rect", NS).get("fill") for key, g in grid.items()}
    assert fill[("node3", "node1")] == fill[("node1", "node3")] and fill[("node1", "node2")] != fill[("node1", "node3")]
    assert int(fill[("node1", "node3")][1:3], 16) > int(fill[("node1", "node3")][3:5], 16)  # more red than green
    assert int(fill[("node1", "node2")][3:5], 16) > int(fill[("node1", "node2")][1:3], 16)  # more green than red
    assert "slow: node3" in healthcheck_svg(graded(pairs, nodes))


def test_a_healthy_cluster_marks_nothing_and_a_missing_pair_is_grey():
    nodes = ["a-1", "a-2", "a-3"]
    root = parse(healthcheck_svg(graded([("a-1", "a-2", 1.0), ("a-1", "a-3", 0.9)], nodes)))
    assert marked(root) == (set(), set())
    grid = cells(root)
    assert grid[("a-2", "a-3")].get("class") == "cell unmeasured" and not [g for g in grid.values() if "slow" in g.get("class")]


def test_names_are_escaped_and_large_clusters_keep_the_text_in_tooltips():
    nodes = ["n<%d>&" % i for i in range(20)]
    pairs = [(a, b, 1.0) for i, a in enumerate(nodes) for b in nodes[i + 1:]]
    root = parse(healthcheck_svg(graded(pairs, nodes)))  # parses: every name escaped
    assert len(cells(root)) == 380
    assert all(g.find("s:text", NS) is None for g in cells(root).values())


def test_the_connectivity_picture_is_red_where_a_connection_failed_and_outlines_the_culprit():
    hosts = ["node1", "node2", "node3"]
    results = {
        "node1": [{"name": "node2", "host": "10.0.0.2", "port": 29500, "ok": True},
                  {"name": "node3", "host": "10.0.0.3", "port": 29500, "ok": False, "reason": "refused"}],
        "node2": [{"name": "node1", "host": "10.0.0.1", "port": 29500, "ok": True},
                  {"name": "node3", "host": "10.0.0.3", "port": 29500, "ok": False, "reason": "timeout"}],
        "node3": None,
    }
    hostvars = {h: {"probe": {"results": r}} if r is not None else {} for h, r in results.items()}
    matrix = probe_matrix(hosts, hostvars, "probe")
    root = parse(connectivity_svg(matrix))
    grid = cells(root)
    assert grid[("node1", "node3")].get("class") == "cell failed" and grid[("node2", "node3")].get("class") == "cell failed"
    assert grid[("node1", "node3")].find("s:title", NS).text == "node1 -> node3: 29500 refused"
    assert grid[("node1", "node2")].get("class") == "cell" and grid[("node3", "node1")].get("class") == "cell unknown"
    assert marked(root)[1] == {("node3", "row"), ("node3", "column")}
    assert "2 of 4 connection(s) failed" in connectivity_svg(matrix)


@pytest.mark.parametrize("call,arg,match", [(healthcheck_svg, {"status": "pass"}, "expects the graded health check"),
                                            (connectivity_svg, ["node1"], "expects probe_matrix's result")])
def test_other_input_is_refused(call, arg, match):
    with pytest.raises(AnsibleFilterError, match=match):
        call(arg)


def test_registered():
    assert Healthcheck().filters()["healthcheck_svg"] is healthcheck_svg
    assert Connectivity().filters()["connectivity_svg"] is connectivity_svg
