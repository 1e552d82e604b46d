# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rank_logs filter: a node's job journal split by the global rank of the worker that wrote each line."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rank_logs
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: Split a node's job journal by global rank
description:
  - >-
    The job's unit tees its workers' output with the global rank in front of every line
    (C([rank3]: ...), the launcher's O(onprem.torchrun.launcher#role:main:launcher_rank_lines)). This filter
    takes the node's journal lines (C(journalctl -o short-iso)) and returns, per global rank, the lines
    that rank wrote, the rank marker taken out and the time, host and process kept.
  - Lines of torchrun's agent itself (rendezvous, restarts, exit codes) carry no rank and are left
    out; the node's whole journal holds them.
  - A node runs other global ranks after a c10d re-rendezvous; each rank it ran gets its lines.
  - >-
    torchrun's tee prints a line a worker had half written in two pieces, each with its marker
    (C([rank0]: par[rank0]: tial)); the pieces are joined again, and a piece of another rank goes to
    that rank.
options:
  _input:
    description: The node's journal lines.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Write one file per global rank
  ansible.builtin.copy:
    content: "{{ item.value | join('\n') ~ '\n' }}"
    dest: "./torchrun-logs/train-rank{{ item.key }}-{{ inventory_hostname }}.log"
    mode: "0640"
  loop: "{{ journal.stdout_lines | onprem.torchrun.rank_logs | dict2items }}"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: Global rank (an integer, in rank order) to the lines it wrote, in the journal's order.
  type: dict
"""

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import rank_segments

# short-iso: "<time> <host> <identifier>[<pid>]: <message>"; the rank marker opens the message.
LINE = re.compile(r"^(\S+ \S+ [^\s:]+(?:\[\d+\])?: )")


def rank_logs(lines):
    """Global rank to its lines (see DOCUMENTATION)."""
    if not isinstance(lines, (list, tuple)):
        raise AnsibleFilterError("rank_logs: expects the journal's lines (a list), got %s" % type(lines).__name__)
    ranks = {}
    for line in lines:
        match = LINE.match(str(line))
        if match:
            for rank, text in rank_segments(str(line)[match.end():]):
                ranks.setdefault(rank, []).append(match.group(1) + text)
    return dict(sorted(ranks.items()))


class FilterModule:
    """onprem.torchrun filters for the job's logs."""

    def filters(self):
        return {"rank_logs": rank_logs}
