# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The start_limit_window filter: how long systemd counts a job unit's starts."""

from __future__ import annotations

DOCUMENTATION = r"""
name: start_limit_window
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: The job unit's StartLimitIntervalSec
description:
  - The window in which systemd counts the job unit's starts - the explicit one when set, else long
    enough that launcher_start_limit_burst + 1 starts, each waiting the whole rendezvous timeout (a
    peer that is gone), the restart delay and torchrun's own start-up, fall into it, so that such a
    job ends failed instead of restarting forever.
  - The same rule (module_utils.contract) is what preflight checks an explicit window against.
options:
  _input:
    description: launcher_start_limit_burst.
    type: int
    required: true
  join_timeout:
    description: torchrun_rdzv_join_timeout.
    type: int
    required: true
  restart_sec:
    description: launcher_restart_sec.
    type: int
    required: true
  explicit:
    description: launcher_start_limit_interval_sec (0 derives the window).
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: The unit's window
  ansible.builtin.debug:
    msg: "StartLimitIntervalSec={{ 5 | onprem.torchrun.start_limit_window(600, 5) }}"
"""

RETURN = r"""
_value:
  description: Seconds.
  type: int
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import start_limit_window as window


def start_limit_window(burst, join_timeout, restart_sec, explicit=0):
    """StartLimitIntervalSec for the job's unit."""
    try:
        return window(int(burst), int(join_timeout), int(restart_sec), int(explicit or 0))
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError("start_limit_window: needs whole numbers of starts and seconds (%s)" % error) from error


class FilterModule:
    """The job unit's start limit."""

    def filters(self):
        return {"start_limit_window": start_limit_window}
