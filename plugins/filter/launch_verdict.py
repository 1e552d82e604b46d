# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The launch_verdict filter: which nodes of a launch run stale settings, did not start, or never joined."""

from __future__ import annotations

DOCUMENTATION = r"""
name: launch_verdict
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: What a launch says of every node - stale, not started, never joined, waited
description:
  - Takes the play's hosts and hostvars and reads, per node, what the launch registered - the C(job)
    of C(__preflight_node) (the unit before the launch as P(onprem.torchrun.node_probe#module) read it,
    with C(stale) when it runs older settings), C(__job_started) (P(onprem.torchrun.job_start#module) -
    how the start went) and C(__job_join) (after the wait for the ranks) - and returns the verdict. A node that has not got to
    a step yet counts in none of that step's lists.
  - A unit whose start failed, or that waits to be restarted (C(auto-restart)), did not start.
  - After the wait, a node still active without workers waited in the rendezvous; a node whose unit
    ended (or waits to restart) without workers is gone. While any node waited, a gone node is why,
    however its unit ended (a stop reads as success); otherwise only a gone node that failed counts
    (a job that already ended well counts as joined).
options:
  _input:
    description: The play's hosts, in order (C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars).
    type: dict
    required: true
  join_timeout:
    description: The launch's O(onprem.torchrun.job#role:main:job_join_timeout), for the message.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Fail the launch, naming the nodes
  ansible.builtin.assert:
    that: not verdict.failed
    fail_msg: "launch failed: {{ verdict.message }}"
  vars:
    verdict: "{{ ansible_play_hosts | onprem.torchrun.launch_verdict(hostvars, join_timeout=job_join_timeout) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The verdict.
  type: dict
  contains:
    stale:
      description: Nodes whose running unit had older settings before the launch.
      type: list
      elements: str
    not_started:
      description: Nodes whose unit did not start (failed, or waits to restart).
      type: list
      elements: str
    joining:
      description:
        - Nodes that started and had no workers yet when the start reported (still in the rendezvous) - what
          the wait for the ranks is for; empty when every rank joined within the start's own wait.
      type: list
      elements: str
    waited:
      description: Nodes still active without workers after the wait (in the rendezvous).
      type: list
      elements: str
    gone:
      description: Nodes whose unit ended without workers and count as the reason.
      type: list
      elements: str
    not_joined:
      description: The nodes to name as not joined - the gone ones, else those that waited.
      type: list
      elements: str
    failed:
      description: Whether the launch failed (a node did not start or did not join).
      type: bool
    message:
      description: What a failed launch says of the nodes, in one line; empty when it did not fail.
      type: str
    lock_released:
      description: Whether a node's start gave the launch lock back (the master's, once its ranks joined).
      type: bool
      version_added: 0.3.0
"""

from ansible.errors import AnsibleFilterError


def _result(node, name):
    """A node's registered result ``name`` (``node``: its hostvars), or None before that step (or when it was skipped)."""
    value = node.get(name)
    return value if isinstance(value, dict) and not value.get("skipped") else None


def launch_verdict(hosts, hostvars, join_timeout=0):
    """The verdict (see DOCUMENTATION)."""
    if not isinstance(hosts, (list, tuple)) or not hasattr(hostvars, "get"):
        raise AnsibleFilterError("launch_verdict: expects the play's hosts (a list) and hostvars")
    hosts = [str(h) for h in hosts]
    nodes = {h: hostvars.get(h) or {} for h in hosts}  # each node's variables are gathered once: a costly step per host
    stale = [h for h in hosts if ((_result(nodes[h], "__preflight_node") or {}).get("job") or {}).get("stale")]
    started = [(h, r) for h in hosts for r in [_result(nodes[h], "__job_started")] if r is not None and "finished" in r]
    not_started = []
    for host, result in started:
        if (result["finished"] and result.get("result") != "success") or result.get("sub_state") == "auto-restart":
            not_started.append(host)
    joining = [h for h, r in started if h not in not_started and not r["finished"] and not r.get("workers")]
    joins = [(h, r) for h in hosts for r in [_result(nodes[h], "__job_join")] if r is not None and "workers" in r and not r["workers"]]
    waited = [h for h, r in joins if not r.get("finished") and r.get("sub_state") != "auto-restart"]
    ended = [(h, r) for h, r in joins if h not in waited]
    gone = ended if waited else [(h, r) for h, r in ended if r.get("result") != "success"]
    not_joined = [h for h, _r in gone] or waited
    said = ["%s did not start" % h for h in not_started]
    said += ["%s never joined (its unit ended: %s/%s, result %s)" % (h, r.get("state"), r.get("sub_state"), r.get("result")) for h, r in gone]
    if gone and waited:
        said.append("%s waited for %s" % (", ".join(waited), "it" if len(gone) == 1 else "them"))
    elif waited:
        said.append("%s did not join within job_join_timeout=%d s" % (", ".join(waited), int(join_timeout or 0)))
    return {"stale": stale, "not_started": not_started, "joining": joining, "waited": waited, "gone": [h for h, _r in gone], "not_joined": not_joined,
            "failed": bool(not_started or not_joined), "message": "; ".join(said),
            "lock_released": any(r.get("lock_released") for _h, r in started)}


class FilterModule:
    """onprem.torchrun filters for a launch."""

    def filters(self):
        return {"launch_verdict": launch_verdict}
