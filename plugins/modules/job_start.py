#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start a torchrun job's unit on this node and report how it started, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: job_start
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: Start a torchrun job's unit and report whether it started, in one round trip
description:
  - What a launch does on each node once every node has passed its checks, in one call - each of
    these steps was a round trip of its own.
  - Writes the run's environment file (O(run_env), the c10d run id) when it differs, root's and mode
    C(0644), replacing the file (a link there is replaced, never followed).
  - Resets the unit's start limit and failed state (C(systemctl reset-failed)) - systemd counts every
    start against C(StartLimitBurst), and a launch starts a new count.
  - Starts C(torchrun-<job>.service), or restarts it when O(restart) is set (another node runs older
    settings, so every node restarts) or when the unit waits for an automatic restart (a crash loop,
    where a start would leave it waiting).
  - Then reads the unit as M(onprem.torchrun.job_info) does (waiting up to O(wait_for_workers) for the
    ranks to join) and returns the same keys, so the launch knows which nodes did not start, and
    usually that every rank joined, without another round trip.
options:
  job:
    description: The job name (the unit is C(torchrun-<job>.service)).
    type: str
    required: true
  restart:
    description: Restart the unit when it runs (with older settings somewhere in the cluster); V(false) leaves a running unit running.
    type: bool
    default: false
  run_env:
    description: The content of the run's environment file; unset writes none.
    type: str
  run_env_path:
    description: Where the run's environment file goes (the contract's C(__torchrun_run_env)). Required with O(run_env).
    type: path
  log_lines:
    description: How many journal lines of the run to return.
    type: int
    default: 3
  wait_for_workers:
    description:
      - Up to this many seconds after the start, look again every 0.1 s on the node until the agent has
        workers (every rank joined, with the static rendezvous) or the run is over, then report - a launch
        whose ranks all join within it needs no wait of its own (M(onprem.torchrun.job_wait)). V(0) reads once.
    type: float
    default: 0
  lock_token:
    description:
      - The token of this launch's lock (M(onprem.torchrun.job_lock)). On the node that holds the job's lock
        with it (the master), the lock is given back once this node's ranks have joined - with a fixed
        number of nodes, the master's workers start only when every node has joined, so the launch is
        done. Elsewhere, or when the ranks have not joined, nothing happens (the launch gives it back
        itself). Unset gives back nothing.
    type: str
attributes:
  check_mode:
    description: Can run in check mode.
    support: full
    details: In check mode nothing is written or started; the result says what a run would change and reads the unit as it is.
  diff_mode:
    description: Returns no diff.
    support: none
seealso:
  - module: onprem.torchrun.job_info
  - module: onprem.torchrun.job_wait
"""

EXAMPLES = r"""
- name: Start torchrun on every node together
  onprem.torchrun.job_start:
    job: train
    restart: "{{ any_node_stale }}"
  register: started
"""

RETURN = r"""
action:
  description: What was done to the unit - C(started), C(restarted), or C(none) when it ran already.
  returned: always
  type: str
  sample: started
lock_released:
  description: Whether this call gave back the launch's lock (O(lock_token)).
  returned: always
  type: bool
start_error:
  description: What systemctl said when the start failed (empty when it did not); the unit's state and log say more.
  returned: always
  type: str
state:
  description: The unit's ActiveState after the start; the other keys are those of M(onprem.torchrun.job_info).
  returned: always
  type: str
  sample: active
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils import launch_lock, root_file, unit_state


def write_run_env(module, path, content):
    """Write ``content`` to ``path`` (root, 0644) unless it holds it already; whether it changed."""
    return root_file.replace(path, content, 0o644, module.check_mode)


def start(module, unit, verb):
    """Reset the unit's start limit, then start or restart it; systemctl's complaint when that failed."""
    rc, _out, err = module.run_command(["systemctl", "reset-failed", unit])
    if rc != 0 and "not loaded" not in err:  # an ended unit nothing refers to is unloaded: nothing to reset
        module.fail_json(msg="systemctl reset-failed %s failed: %s" % (unit, err.strip()), rc=rc)
    rc, _out, err = module.run_command(["systemctl", verb, unit])
    return "" if rc == 0 else err.strip() or "systemctl %s %s exited with %d" % (verb, unit, rc)


def verb(now, restart):
    """What to ask of systemd, given the unit's state now: restart a crash loop's waiting unit, and a
    running one when ``restart``; start one that does not run; leave a running one alone."""
    if now["sub_state"] == "auto-restart" or (now["state"] in unit_state.RUNNING and restart):
        return "restart"
    return "none" if now["state"] in unit_state.RUNNING else "start"


def main():
    module = AnsibleModule(
        argument_spec=dict(job=dict(type="str", required=True), restart=dict(type="bool", default=False),
                           run_env=dict(type="str"), run_env_path=dict(type="path"), log_lines=dict(type="int", default=3),
                           wait_for_workers=dict(type="float", default=0), lock_token=dict(type="str", no_log=False)),
        required_by={"run_env": "run_env_path"},
        supports_check_mode=True,
    )
    params = module.params
    try:
        lock = launch_lock.lock_path(params["job"])  # also refuses a name that is no job's
    except ValueError as error:
        module.fail_json(msg=str(error))
    unit = unit_state.unit_name(params["job"])
    changed = params["run_env"] is not None and write_run_env(module, params["run_env_path"], params["run_env"])
    asked = verb(unit_state.before(module, params["job"]), params["restart"])
    error = ""
    if asked != "none":
        changed = True
        if not module.check_mode:
            error = start(module, unit, asked)
    wait = params["wait_for_workers"] if not module.check_mode and not error else 0
    report = unit_state.report(module, params["job"], params["log_lines"], wait_for_workers=wait)
    released = bool(params["lock_token"]) and report["workers"] > 0 and not module.check_mode and launch_lock.give_back(
        lock, params["lock_token"], False)
    module.exit_json(changed=changed, action={"none": "none", "start": "started", "restart": "restarted"}[asked],
                     start_error=error, lock_released=released, **report)


if __name__ == "__main__":
    main()
