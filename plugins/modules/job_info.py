#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the state of a torchrun job's systemd unit on this node."""

from __future__ import annotations

DOCUMENTATION = r"""
module: job_info
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: State, exit status, workers and last log lines of a torchrun job's unit
description:
  - Reads C(torchrun-<job>.service) with C(systemctl show), counts the worker processes that
    the torchrun agent has started (with the static rendezvous they start only once every
    node has joined), and returns the last journal lines of the unit's latest run.
  - Reads only; changes nothing.
options:
  job:
    description: The job name (the unit is C(torchrun-<job>.service)).
    type: str
    required: true
  log_lines:
    description: How many journal lines of the latest run to return.
    type: int
    default: 5
  wait_for_workers:
    description:
      - Up to this many seconds, look again every 0.1 s on the node until the agent has workers
        or the run is over, then report. A launch learns that every rank has joined within
        0.1 s of it, without a round trip per look. V(0) reads once.
    type: float
    default: 0
  wait_for_end:
    description:
      - Up to this many seconds, look again every 0.2 s on the node until the run is over (the unit
        no longer active or activating), then report. A launch that waits for the job learns that it
        ended within 0.2 s, not at its next poll. Not with O(wait_for_workers). V(0) reads once.
    type: float
    default: 0
  journal_after:
    description:
      - Also return the job's journal lines written after this cursor (RV(journal_lines), RV(journal_cursor)),
        as a follower reads them again and again. V("") starts with the last O(log_lines) lines. Unset
        reads no such lines.
    type: str
    version_added: 0.2.0
extends_documentation_fragment:
  - onprem.torchrun.cluster.read_only
"""

EXAMPLES = r"""
- name: Read the job's state
  onprem.torchrun.job_info:
    job: train
  register: job
"""

RETURN = r"""
journal_lines:
  description: With O(journal_after), the job's journal lines after that cursor (its workers' and agent's output).
  returned: when O(journal_after) is set
  type: list
  elements: str
journal_cursor:
  description: With O(journal_after), the cursor to pass next time (unchanged when there was nothing new).
  returned: when O(journal_after) is set
  type: str
unit:
  description: The unit's name.
  returned: always
  type: str
  sample: torchrun-train.service
exists:
  description: Whether the unit is installed.
  returned: always
  type: bool
state:
  description: The unit's ActiveState (C(active), C(inactive), C(failed), ...).
  returned: always
  type: str
sub_state:
  description: The unit's SubState.
  returned: always
  type: str
result:
  description:
    - systemd's Result of the latest run (C(success), C(exit-code), C(signal), ...), or
      C(start-limit-hit) when systemd refused to start it again (read from the unit's journal too).
  returned: always
  type: str
exit_status:
  description: Exit status of the torchrun agent in the latest run (0 while it runs).
  returned: always
  type: int
restarts:
  description: How often systemd restarted the unit (NRestarts).
  returned: always
  type: int
main_pid:
  description: PID of the torchrun agent, 0 when it is not running.
  returned: always
  type: int
workers:
  description: Worker processes the agent runs now.
  returned: always
  type: int
worker_ranks:
  description:
    - Each worker's PID, its global rank (C(RANK) of its environment; empty when unreadable) and its
      PID in its own PID namespace (C(pid_inside); the job's container's where torchrun_runtime runs
      it in its image, else the same as C(pid)).
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4242, "rank": "0", "pid_inside": 4}, {"pid": 4243, "rank": "1", "pid_inside": 5}]
started:
  description: When the unit last became active (ActiveEnterTimestamp), empty if never.
  returned: always
  type: str
finished:
  description: Whether the latest run is over (not active, activating or deactivating).
  returned: always
  type: bool
stale:
  description:
    - Whether the run that is going on started before its unit or environment files last
      changed (setup.yml installed new settings while it ran), so a launch restarts it.
  returned: always
  type: bool
log:
  description: The last journal lines of the latest run.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils import unit_state


def main():
    module = AnsibleModule(
        argument_spec=dict(job=dict(type="str", required=True), log_lines=dict(type="int", default=5),
                           wait_for_workers=dict(type="float", default=0), wait_for_end=dict(type="float", default=0), journal_after=dict(type="str")),
        mutually_exclusive=[["wait_for_workers", "wait_for_end"]],
        supports_check_mode=True,
    )
    params = module.params
    module.exit_json(changed=False, **unit_state.report(module, params["job"], params["log_lines"], params["wait_for_workers"],
                                                        params["wait_for_end"], params["journal_after"]))


if __name__ == "__main__":
    main()
