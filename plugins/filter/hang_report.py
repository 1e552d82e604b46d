# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hang_report filter: name the rank a hung job waits for."""

from __future__ import annotations

DOCUMENTATION = r"""
name: hang_report
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: Name the rank a hung job waits for, from its stacks and flight records
description:
  - Reads every worker's Python stack (C(py-spy dump), as playbooks/stacks.yml registers them per
    node) and says where each rank is - in a torch.distributed collective, in the backward pass
    (DDP's gradient all_reduce), or in the script's own code - and names the ranks outside a
    collective while the others wait in one.
  - With PyTorch's NCCL flight recorder dumps (cuda jobs; written on a collective's timeout), also
    names, per process group, the rank whose last collective is behind the others' and the
    collective they wait in. A dump is read as plain data (dicts, lists, strings, numbers) only.
options:
  _input:
    description: Node name to its registered py-spy loop (C(results), each with C(item.rank) and C(stdout)).
    type: dict
    required: true
  flight:
    description: Node name to its registered slurp loop of flight recorder dumps (C(results), each with
      C(item.path) ending in the rank and C(content)).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Name the rank the others wait for
  ansible.builtin.debug:
    msg: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'stacks'))) | onprem.torchrun.hang_report }}"
"""

RETURN = r"""
_value:
  description: Lines - the verdict first, then where every rank is.
  type: list
  elements: str
"""

import base64
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.hang import from_flight, from_stacks, load_flight


def _results(value, what):
    if not isinstance(value, dict):
        raise AnsibleFilterError("hang_report: %s must map node names to registered loop results" % what)
    for node, registered in value.items():
        for result in (registered or {}).get("results", []) if isinstance(registered, dict) else []:
            yield node, result


def hang_report(stacks, flight=None):
    """The lines of module_utils.hang over the registered stacks (and flight dumps)."""
    ranks = {}
    for node, result in _results(stacks, "the input"):
        rank = (result.get("item") or {}).get("rank")
        ranks["?" if rank in (None, "") else rank] = (node, (result.get("stdout") or "") + "\n" + (result.get("stderr") or ""))
    lines = from_stacks(ranks) if ranks else ["no worker runs on any node: the job is not running"]
    dumps = {}
    for node, result in _results(flight or {}, "flight"):
        match = re.search(r"(\d+)$", (result.get("item") or {}).get("path", ""))
        if match and result.get("content"):
            try:
                dumps[int(match.group(1))] = (node, load_flight(base64.b64decode(result["content"])))
            except Exception as error:  # pylint: disable=broad-exception-caught  # a torn or foreign file
                lines.append("%s: %s is not a flight record (%s)" % (node, result["item"]["path"], error))
    if len(dumps) > 1:
        lines = from_flight(dumps) + lines
    elif dumps:
        lines += from_flight(dumps)
    return lines


class FilterModule:
    """onprem.torchrun filters for hung jobs."""

    def filters(self):
        return {"hang_report": hang_report}
