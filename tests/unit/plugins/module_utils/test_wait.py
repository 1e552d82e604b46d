"""Waiting for a job on every node (module_utils.wait): when a node's wait is over, and the cluster's one line."""

import threading
import time

import pytest
from ansible_collections.onprem.torchrun.plugins.module_utils import wait

HOSTS = ["node1", "node2"]
RUNNING = {"state": "active", "sub_state": "running", "result": "success", "exit_status": 0, "restarts": 0, "finished": False,
           "log": ["[rank0]: epoch 3/300 loss=0.5"]}
DONE = dict(RUNNING, state="inactive", sub_state="dead", finished=True)
FAILED = dict(RUNNING, state="failed", sub_state="failed", result="exit-code", exit_status=1, finished=True,
              log=["torch.distributed.elastic.multiprocessing.errors.ChildFailedError"])
RESTARTING = dict(RUNNING, state="activating", sub_state="auto-restart", restarts=2)


@pytest.mark.parametrize(("mine", "other", "left", "done", "ended", "still", "failed_nodes"), [
    (RUNNING, RUNNING, 30, False, False, True, []),      # both train on: keep waiting
    (DONE, RUNNING, 30, True, True, False, []),          # this node's run ended (the peer ends soon too)
    (DONE, DONE, 30, True, True, False, []),
    (RUNNING, FAILED, 30, True, False, True, ["node2"]),  # the peer failed: the job cannot go on, stop waiting at once
    (FAILED, RUNNING, 30, True, True, False, []),        # this node failed: over, and the play names it
    (RUNNING, RUNNING, 0, True, False, True, []),        # time is up: the job trains on, which is no failure
    (RESTARTING, RESTARTING, 30, False, False, True, []),  # an automatic restart is still the job running
    (RUNNING, None, 30, False, False, True, []),         # the peer has not reported yet
    (RUNNING, DONE, 30, False, False, True, []),         # a peer that ended well is no reason to stop
])
def test_a_nodes_wait_ends_on_its_own_end_a_peers_failure_or_the_time(mine, other, left, done, ended, still, failed_nodes):
    found = wait.verdict({"node1": mine, "node2": other}, HOSTS, "node1", left)
    assert (found["done"], found["ended"], found["still_running"], found["failed_nodes"]) == (done, ended, still, failed_nodes)


def test_what_a_node_leaves_is_read_back_by_the_others(tmp_path):
    wait.write(str(tmp_path), "node1", dict(RUNNING, worker_ranks=[{"pid": 1}], secret="x"))
    back = wait.read(str(tmp_path), HOSTS)
    assert back["node2"] is None and back["node1"]["log"] == RUNNING["log"] and "secret" not in back["node1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node1.json"]  # written whole, then renamed


def test_one_line_for_the_cluster_names_the_nodes_running_restarts_failures_and_the_masters_last_line():
    line = wait.progress_line("train", {"node1": RUNNING, "node2": RESTARTING}, HOSTS, "node1")
    assert line == "job train: 2 of 2 node(s) running, 2 restart(s); node1: [rank0]: epoch 3/300 loss=0.5"
    line = wait.progress_line("train", {"node1": RUNNING, "node2": FAILED}, HOSTS, "node1")
    assert line.startswith("job train: 1 of 2 node(s) running, 0 restart(s), failed on node2; ")
    assert wait.progress_line("train", {"node1": None, "node2": None}, HOSTS, "node1") == "job train: 0 of 2 node(s) running, 0 restart(s)"


def test_tokens_and_names_become_plain_file_names():
    assert wait.safe("abc123") == "abc123" and wait.safe("../x y") == ".._x_y" and wait.safe("") == "_"


@pytest.mark.parametrize(("mine", "left", "done"), [
    (dict(RUNNING, workers=0), 30, False), (dict(RUNNING, workers=2), 30, True), (FAILED, 30, True),
    (dict(RESTARTING, workers=0), 30, True), (dict(RUNNING, workers=0), 0, True),
])
def test_a_nodes_wait_for_the_join_ends_with_its_workers_its_end_or_the_time(mine, left, done):
    assert wait.verdict({"node1": mine, "node2": None}, HOSTS, "node1", left, until="joined")["done"] is done


def test_while_joining_the_line_counts_the_nodes_with_workers():
    nodes = {"node1": dict(RUNNING, workers=2), "node2": dict(RUNNING, workers=0)}
    assert wait.progress_line("train", nodes, HOSTS, "node1", until="joined") == (
        "job train: waiting until every rank has joined: 1 of 2 node(s) have their workers")


def test_a_follower_marks_each_line_with_the_node_its_rank_and_the_global_rank_that_wrote_it():
    lines = ["[rank3]: epoch 5/300 loss=0.25", "INFO:torch.distributed.elastic.agent.server.api:[default] Starting worker group",
             "[rank12]: [rank1]: rank 1's line after an empty piece of rank 12", "[rank0]: "]
    assert wait.follow_lines("node2", 1, lines) == [
        "node2 (node 1) rank 3 | epoch 5/300 loss=0.25",
        "node2 (node 1) agent | INFO:torch.distributed.elastic.agent.server.api:[default] Starting worker group",
        "node2 (node 1) rank 1 | rank 1's line after an empty piece of rank 12",
        "node2 (node 1) rank 0 | ",
    ]
    assert wait.follow_lines("node1", 0, []) == []


def test_the_last_node_to_finish_removes_the_folder_and_not_before(tmp_path):
    folder = tmp_path / "wait"
    folder.mkdir()
    for host in HOSTS:
        wait.write(str(folder), host, RUNNING)
    assert wait.finish(str(folder), "node2", HOSTS) is False
    assert wait.read(str(folder), HOSTS)["node2"] == {key: RUNNING.get(key) for key in wait.KEPT}  # node1 still reads node2
    assert wait.finish(str(folder), "node1", HOSTS) is True and not folder.exists()


def test_the_last_line_waits_for_a_peer_answering_in_the_same_round(tmp_path):
    wait.write(str(tmp_path), "node1", RUNNING)
    late = threading.Timer(0.3, wait.write, (str(tmp_path), "node2", RUNNING))
    late.start()
    nodes = wait.read_all(str(tmp_path), HOSTS, wait.read(str(tmp_path), HOSTS), 3.0)
    late.join()
    assert nodes["node1"] and nodes["node2"]
    assert wait.progress_line("train", nodes, HOSTS, "node1").startswith("job train: 2 of 2 node(s) running")


def test_a_peer_that_never_answers_costs_the_bound_once(tmp_path):
    wait.write(str(tmp_path), "node1", RUNNING)
    started = time.monotonic()
    nodes = wait.read_all(str(tmp_path), HOSTS, wait.read(str(tmp_path), HOSTS), 0.3)
    assert nodes["node2"] is None and time.monotonic() - started >= 0.3  # it waited its bound, then gave the line without it
