#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take or give back a job's launch lock on a node: one launch of a job at a time."""

from __future__ import annotations

DOCUMENTATION = r"""
module: job_lock
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: One launch of a torchrun job at a time - a lock on a node, naming who holds it and since when
description:
  - C(state=held) takes the lock of O(job) on the node, a folder made at once or not at all (C(mkdir)) under
    O(folder), with a note of O(owner), O(token) and the time. When another run holds it, the task
    fails naming that run and since when; a lock holding the same O(token) is this run's own (the
    plays of one C(ansible-playbook) run share it), so taking it again changes nothing.
  - C(state=free) gives back the lock this run holds; a lock of another run is left alone.
  - The folder is under C(/run), so a reboot frees every lock; a run that was killed leaves its lock,
    which the failure message says how to remove.
options:
  job:
    description: The job (torchrun_job); the lock is O(folder)/O(job).
    type: str
    required: true
  state:
    description: C(held) takes the lock, C(free) gives it back.
    type: str
    choices: [held, free]
    default: held
  token:
    description: What makes the lock this run's own; the same for every play of one run.
    type: str
    required: true
  owner:
    description: Who takes the lock (the controller's user and host, and the play), shown to a run that finds it held.
    type: str
    default: ""
  folder:
    description: Where the locks are kept (root's own, 0700).
    type: path
    default: /run/torchrun/locks
attributes:
  check_mode:
    description: Can run in check mode.
    support: full
    details: In check mode a free lock is not taken (reported as a change); one held by another run still fails.
  diff_mode:
    description: Returns no diff.
    support: none
"""

EXAMPLES = r"""
- name: Take the job's launch lock on the master
  onprem.torchrun.job_lock:
    job: train
    token: "{{ run_token }}"
    owner: "alice@controller (playbooks/launch.yml)"
  run_once: true
  delegate_to: node1
"""

RETURN = r"""
holder:
  description: The note of the run that holds the lock (C(owner), C(since), C(token) left out), or null when it is free.
  returned: always
  type: dict
  sample: {"owner": "alice@controller (Launch the torchrun job)", "since": "2026-12-03T08:10:00Z"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils.launch_lock import FOLDER, busy_message, give_back, lock_path, shown, take


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "job": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["held", "free"], "default": "held"},
            "token": {"type": "str", "required": True, "no_log": False},  # a run id, not a secret
            "owner": {"type": "str", "default": ""},
            "folder": {"type": "path", "default": FOLDER},
        },
        supports_check_mode=True,
    )
    job = module.params["job"]
    try:
        path = lock_path(job, module.params["folder"])
    except ValueError as error:
        module.fail_json(msg=str(error))
    if module.params["state"] == "free":
        module.exit_json(changed=give_back(path, module.params["token"], module.check_mode), holder=None)
    changed, holder = take(path, module.params["token"], module.params["owner"], module.check_mode)
    if holder is not None:
        module.fail_json(msg=busy_message(job, holder, path), holder=shown(holder))
    module.exit_json(changed=changed, holder=None)


if __name__ == "__main__":
    main()
