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
  analyser:
    description:
      - The registered run of torch's own analyser (C(torch.distributed.flight_recorder.fr_trace)) over
        every rank's record, as playbooks/stacks.yml runs it on the master (rc 3 - the venv has none).
        Where it ran, its report stands for the records and they are not read here; where it is
        missing, skipped or failed, they are, and the first line says which analyser read them.
    type: dict
    default: {}
    version_added: 0.3.0
  analyser_where:
    description: Where and as whom the analyser ran, for that line (C(node1 as torchrun-train)).
    type: str
    default: ""
    version_added: 0.3.0
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


NOISE = re.compile(r"Warning|_conversion_method_template|tabulate is not installed")
TORCH = "torch's analyser (torch.distributed.flight_recorder.fr_trace)"


def _analysed(analyser, where):
    """torch's analyser's report where it ran (None otherwise), and the line that says who read the records."""
    if not isinstance(analyser, dict) or not analyser or analyser.get("skipped") or "rc" not in analyser:
        return None, ""
    where = " on " + where if where else ""
    if analyser["rc"] == 0:
        report = [line for line in (analyser.get("stdout") or "").splitlines() if line.strip() and not NOISE.search(line)]
        return report, "flight records: read by %s%s" % (TORCH, where)
    if analyser["rc"] == 3:
        return None, "flight records: the venv%s has no torch flight recorder analyser; read by onprem.torchrun.hang_report" % where
    last = [line for line in (analyser.get("stderr") or "").splitlines() if line.strip() and not NOISE.search(line)]
    return None, "flight records: %s%s failed on them (%s); read by onprem.torchrun.hang_report instead" % (
        TORCH, where, last[-1].strip() if last else "rc %s" % analyser["rc"])


def hang_report(stacks, flight=None, analyser=None, analyser_where=""):
    """The lines of module_utils.hang over the registered stacks (and flight dumps), with torch's
    analyser's report in place of our reading of the dumps where it ran."""
    report, said = _analysed(analyser, analyser_where)
    if report is not None:
        return [said] + report + hang_report(stacks)
    lines = _ours(stacks, flight)
    return ([said] + lines) if said and flight else lines


def _ours(stacks, flight):
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
