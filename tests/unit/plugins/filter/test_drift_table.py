"""The drift report's comparison of node stacks."""

from ansible_collections.onprem.torchrun.plugins.filter.drift_table import drift_table

SAME = {"driver": "none", "python": "3.11.2", "torch": "2.13.0+cpu", "lightning": "2.6.6"}


def hostvars(**changes):
    out = {}
    for host in ("node1", "node2", "node3"):
        versions = dict(SAME, **changes.get(host, {}))
        out[host] = {"stack": {"versions": versions}}
    return out


def test_equal_stacks_have_no_drift():
    report = drift_table(["node1", "node2", "node3"], hostvars(), "stack")
    assert report["drift"] == [] and report["lines"] == []
    assert report["components"] == ["driver", "python", "torch", "lightning"]
    assert report["table"][0] == "node   driver  python  torch       lightning"
    assert report["table"][1] == "node1  none    3.11.2  2.13.0+cpu  2.6.6"


def test_a_differing_version_is_named_with_its_node():
    report = drift_table(["node1", "node2", "node3"], hostvars(node2={"lightning": "2.6.5"}), "stack")
    assert report["drift"] == ["lightning"]
    assert report["lines"] == ["lightning: node1 2.6.6, node2 2.6.5, node3 2.6.6"]
    assert report["table"][0].endswith("lightning*")
    assert report["table"][2] == "node2  none    3.11.2  2.13.0+cpu  2.6.5"


def test_a_node_without_a_result_counts_as_differing():
    data = hostvars()
    data["node3"] = {}
    report = drift_table(["node1", "node2", "node3"], data, "stack")
    assert report["drift"] == ["driver", "python", "torch", "lightning"]
    assert report["table"][3].split() == ["node3", "?", "?", "?", "?"]
    assert report["table"][0].split() == ["node", "driver*", "python*", "torch*", "lightning*"]


def test_a_probe_s_stack_is_read_under_a_dotted_name_with_its_packages_from_every_distribution():
    # A launch's probe lists every distribution; the report picks the ones it compares (names normalized).
    data = {host: {"__preflight_node": {"stack": {"versions": dict(SAME), "distributions": {"numpy": version, "typing-extensions": "4.12.2"}}}}
            for host, version in (("node1", "2.1.3"), ("node2", "1.26.4"))}
    report = drift_table(["node1", "node2"], data, "__preflight_node.stack", packages=["NumPy", "typing_extensions", "einops"])
    assert report["components"][-3:] == ["NumPy", "typing_extensions", "einops"]
    assert report["drift"] == ["NumPy"] and report["lines"] == ["NumPy: node1 2.1.3, node2 1.26.4"]
    assert report["table"][1].split()[-2:] == ["4.12.2", "none"]  # einops is on neither node
    data["node2"]["__preflight_node"]["stack"] = None  # the probe did not run node2's venv (another account can change it)
    assert drift_table(["node1", "node2"], data, "__preflight_node.stack")["table"][2].split()[1:] == ["?"] * 4
