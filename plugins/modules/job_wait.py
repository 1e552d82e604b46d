#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the job_wait action plugin (plugins/action/job_wait.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: job_wait
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: Follow a running job on every node until it ends, with one progress line for the whole cluster
description:
  - Runs on every node of the play at once. Each node's task reads its own unit with
    M(onprem.torchrun.job_info), which waits on the node up to O(interval) seconds for the run to end,
    again and again; the nodes' tasks leave what they read in a folder on the controller (keyed by
    O(token)), and the task of O(master) prints one line for the cluster every O(interval) seconds -
    nodes running, restarts, nodes failed, the master's last journal line - instead of a retry line per node.
  - A node's wait ends when its own run ends, at once when another node's run failed (the job cannot
    go on without it), or after O(timeout) seconds. Running out of time is not a failure - the job
    trains on - and is returned as RV(still_running); the caller says how to follow and stop it.
options:
  job:
    description: The job (torchrun_job).
    type: str
    required: true
  token:
    description: What the nodes' tasks of this run share (the run's token); names the controller folder they meet in.
    type: str
    required: true
  master:
    description: The node whose task prints the progress line (the first of the group).
    type: str
    required: true
  hosts:
    description: Every node of the job, in order.
    type: list
    elements: str
    required: true
  timeout:
    description: Longest wait, in seconds (job_wait_timeout).
    type: float
    required: true
  interval:
    description: Seconds between two progress lines; each node looks meanwhile (on the node) every 0.1 s for the ranks to join, every 0.2 s for the end.
    type: float
    default: 10
  log_lines:
    description: Journal lines of each node's latest run to return.
    type: int
    default: 5
  until:
    description:
      - C(ended) waits until the run is over (above). C(joined) waits until the node's agent has its
        workers (the static rendezvous starts them once every node joined), its run is over or it waits
        for an automatic restart, or O(timeout); the progress line counts the nodes with workers.
    type: str
    choices: [ended, joined]
    default: ended
  follow:
    description:
      - Also print every new line of each node's job journal as it comes (within O(interval) seconds),
        each marked with the node, its node rank and the global rank that wrote it (C(agent) for
        torchrun's own lines), instead of the progress line; the wait ends as above (playbooks/logs.yml
        with C(job_follow=true)).
    type: bool
    default: false
    version_added: 0.2.0
attributes:
  action:
    description: The work is done by an action plugin on the controller, which runs job_info on the node.
    support: full
  check_mode:
    description: Reads only.
    support: full
  diff_mode:
    description: Returns no diff; it changes nothing.
    support: none
seealso:
  - module: onprem.torchrun.job_info
"""

EXAMPLES = r"""
- name: Wait until the job ends
  onprem.torchrun.job_wait:
    job: train
    token: "{{ run_token }}"
    master: "{{ groups['trainers'][0] }}"
    hosts: "{{ groups['trainers'] }}"
    timeout: 3600
  register: job_end
"""

RETURN = r"""
ended:
  description: Whether this node's run is over (then the keys of M(onprem.torchrun.job_info) describe how it ended).
  returned: always
  type: bool
still_running:
  description: Whether this node's run goes on (the time ran out, or another node failed first).
  returned: always
  type: bool
failed_nodes:
  description: The other nodes whose run failed while this node waited.
  returned: always
  type: list
  elements: str
waited:
  description: Seconds this node waited.
  returned: always
  type: float
"""
