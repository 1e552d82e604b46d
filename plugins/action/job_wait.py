# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for onprem.torchrun.job_wait: follow a job on every node, one progress line for the cluster."""

from __future__ import annotations

import os
import tempfile
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.onprem.torchrun.plugins.module_utils import wait as wait_model

display = Display()
# How long the master's last line waits for a peer that has not answered yet (a node that never runs the wait costs this once).
PEERS_BOUND = 3.0


class ActionModule(ActionBase):
    """Each node's task reads its own unit (job_info, which waits on the node) until the job ends,
    a node fails or the time is up; the nodes' tasks meet in a folder on the controller, and the
    master's prints one line for the whole cluster."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("job", "token", "master", "hosts", "timeout", "interval", "log_lines", "until", "follow"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _args, params = self.validate_argument_spec(argument_spec={
            "job": {"type": "str", "required": True},
            "token": {"type": "str", "required": True},
            "master": {"type": "str", "required": True},
            "hosts": {"type": "list", "elements": "str", "required": True},
            "timeout": {"type": "float", "required": True},
            "interval": {"type": "float", "default": 10},
            "log_lines": {"type": "int", "default": 5},
            "until": {"type": "str", "choices": ["ended", "joined"], "default": "ended"},
            "follow": {"type": "bool", "default": False},
        })
        until = params["until"]
        host = task_vars["inventory_hostname"]
        folder = os.path.join(tempfile.gettempdir(), "onprem-torchrun-wait-%s-%s" % (wait_model.safe(params["token"]), until))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        started = time.monotonic()
        last_shown = 0.0
        follow = params["follow"]
        cursor = ""
        node_rank = params["hosts"].index(host) if host in params["hosts"] else -1
        while True:
            left = params["timeout"] - (time.monotonic() - started)
            args = {"job": params["job"], "log_lines": params["log_lines"],
                    ("wait_for_workers" if until == "joined" else "wait_for_end"): max(0.0, min(params["interval"], left))}
            if follow:
                args["journal_after"] = cursor
            info = self._execute_module(module_name="onprem.torchrun.job_info", module_args=args, task_vars=task_vars)
            if info.get("failed"):
                return dict(result, **info)
            if follow:
                for line in wait_model.follow_lines(host, node_rank, info.pop("journal_lines", [])):
                    display.display(line)
                cursor = info.pop("journal_cursor", cursor)
            wait_model.write(folder, host, info)
            nodes = wait_model.read(folder, params["hosts"])
            verdict = wait_model.verdict(nodes, params["hosts"], host, params["timeout"] - (time.monotonic() - started), until)
            if host == params["master"] and verdict["done"]:
                nodes = wait_model.read_all(folder, params["hosts"], nodes, PEERS_BOUND)  # the last line counts every node
            if host == params["master"] and (verdict["done"] or not follow and time.monotonic() - last_shown >= params["interval"] - 0.5):
                display.display(wait_model.progress_line(params["job"], nodes, params["hosts"], params["master"], until))
                last_shown = time.monotonic()
            if verdict["done"]:
                wait_model.finish(folder, host, params["hosts"])
                result.update(info)
                result.update(changed=False, waited=round(time.monotonic() - started, 1), **verdict)
                return result
