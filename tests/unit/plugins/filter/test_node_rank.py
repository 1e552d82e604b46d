import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.node_rank import FilterModule, node_rank

GROUP = ["node1", "node2", "node3"]


@pytest.mark.parametrize(("host", "rank"), [("node1", 0), ("node2", 1), ("node3", 2)])
def test_rank_is_the_index_in_the_group(host, rank):
    assert node_rank(host, GROUP) == rank


def test_rank_ignores_the_play_subset():
    # The full group decides, so --limit node3 still gives node3 rank 2.
    assert node_rank("node3", GROUP) == 2


@pytest.mark.parametrize(
    ("host", "hosts", "message"),
    [
        ("node9", GROUP, "host 'node9' is not in the training group (node1, node2, node3)"),
        ("node1", [], "host 'node1' is not in the training group (empty)"),
        ("node2", ["node1", "node2", "node2"], "host 'node2' appears 2 times in the training group"),
        ("node1", "node1,node2", "the host list must be a list, got str"),
    ],
)
def test_bad_input_is_refused_with_the_host_named(host, hosts, message):
    with pytest.raises(AnsibleFilterError, match="^node_rank: " + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        node_rank(host, hosts)


def test_filter_is_registered():
    assert FilterModule().filters()["node_rank"] is node_rank
