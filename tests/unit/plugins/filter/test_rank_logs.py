"""The rank_logs filter: a node's journal split by the global rank of each line's worker."""

from string import Template

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.rank_logs import FilterModule, rank_logs
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import RANK_LINE_TEMPLATE


def teed(rank, text, pid=812):
    """A worker's line as torchrun's tee writes it to the journal (the template as the unit sets it)."""
    return "2026-11-30T22:10:0%d+0000 node2 torchrun[%d]: %s%s" % (rank % 10, pid, Template(RANK_LINE_TEMPLATE).safe_substitute(rank=rank), text)


JOURNAL = [
    "2026-11-30T22:10:00+0000 node2 systemd[1]: Started torchrun-train.service - torchrun job train.",
    "2026-11-30T22:10:01+0000 node2 torchrun[812]: W1130 22:10:01.123000 812 torch/distributed/run.py:851] Setting OMP_NUM_THREADS",
    teed(3, "[rank 3] joined: node 1"),
    teed(2, "[rank 2] joined: node 1"),
    teed(3, "epoch 1/3 loss=0.5"),
    # c10d's own warning as a worker writes it to stderr (no space after the colon), teed.
    teed(2, "[rank2]:[W1130 22:10:04.000 ProcessGroupGloo.cpp:12] Warning: something"),
    "2026-11-30T22:10:09+0000 node2 torchrun[812]: I1130 agent: worker group successfully finished",
]


def test_each_rank_gets_its_own_lines_in_order_without_the_marker():
    out = rank_logs(JOURNAL)
    assert list(out) == [2, 3]
    assert out[3] == ["2026-11-30T22:10:03+0000 node2 torchrun[812]: [rank 3] joined: node 1",
                      "2026-11-30T22:10:03+0000 node2 torchrun[812]: epoch 1/3 loss=0.5"]
    assert out[2][1].endswith("torchrun[812]: [rank2]:[W1130 22:10:04.000 ProcessGroupGloo.cpp:12] Warning: something")


def test_the_agents_own_lines_and_untagged_output_belong_to_no_rank():
    # Without the tee (launcher_rank_lines=false) c10d's "[rank0]:[W..." has no space: not a marker.
    untagged = ["2026-11-30T22:10:01+0000 node1 torchrun[9]: [rank0]:[W1130 ProcessGroupNCCL.cpp:1] Warning",
                "2026-11-30T22:10:01+0000 node1 torchrun[9]: [rank 0] epoch 1/3"]
    assert rank_logs(untagged) == {}
    assert rank_logs([]) == {}


def test_a_node_that_ran_other_ranks_after_a_new_rendezvous_keeps_both():
    out = rank_logs([teed(0, "epoch 1", pid=5), teed(1, "epoch 1", pid=5), teed(12, "epoch 2", pid=77)])
    assert list(out) == [0, 1, 12] and out[12] == ["2026-11-30T22:10:02+0000 node2 torchrun[77]: epoch 2"]


def test_a_half_written_line_printed_in_two_pieces_is_one_line_without_either_marker():
    # torchrun's tee reached the end of the worker's file mid-line: the rest comes with the marker again.
    out = rank_logs([teed(1, "Epoch 3: 50%") + "[rank1]: loss=0.2", teed(0, "saved") + "[rank2]: joined: node 1"])
    assert out[1] == ["2026-11-30T22:10:01+0000 node2 torchrun[812]: Epoch 3: 50%loss=0.2"]
    assert out[0] == ["2026-11-30T22:10:00+0000 node2 torchrun[812]: saved"]
    assert out[2] == ["2026-11-30T22:10:00+0000 node2 torchrun[812]: joined: node 1"]


def test_a_rank_marker_inside_a_message_is_not_taken():
    line = "2026-11-30T22:10:01+0000 node1 torchrun[9]: retrying [rank4]: as before"
    assert rank_logs([line]) == {}


def test_not_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match="expects the journal's lines"):
        rank_logs("one string")


def test_registered():
    assert FilterModule().filters()["rank_logs"] is rank_logs
