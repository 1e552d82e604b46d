"""The job_wait action's last line (plugins/action/job_wait.py): it counts a peer whose answer comes a moment later."""

import threading
import time

from ansible_collections.onprem.torchrun.plugins.action.job_wait import ActionModule
from ansible_collections.onprem.torchrun.plugins.module_utils import wait

HOSTS = ["node1", "node2"]
RUNNING = {"state": "active", "sub_state": "running", "finished": False, "log": []}


def test_the_last_line_waits_for_a_peer_answering_in_the_same_round(tmp_path):
    wait.write(str(tmp_path), "node1", RUNNING)
    late = threading.Timer(0.3, wait.write, (str(tmp_path), "node2", RUNNING))
    late.start()
    nodes = ActionModule._peers_reported(str(tmp_path), HOSTS, wait.read(str(tmp_path), HOSTS))
    late.join()
    assert nodes["node1"] and nodes["node2"]
    assert wait.progress_line("train", nodes, HOSTS, "node1").startswith("job train: 2 of 2 node(s) running")


def test_a_peer_that_never_answers_costs_the_bound_once(tmp_path):
    wait.write(str(tmp_path), "node1", RUNNING)
    started = time.monotonic()
    nodes = ActionModule._peers_reported(str(tmp_path), HOSTS, wait.read(str(tmp_path), HOSTS), bound=0.3)
    assert nodes["node2"] is None and time.monotonic() - started >= 0.3  # it waited its bound, then gave the line without it
