# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd_exec_args filter: a command line quoted for a unit's ExecStart=."""

from __future__ import annotations

DOCUMENTATION = r"""
name: systemd_exec_args
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: Quote a list of arguments for a systemd ExecStart= line
description:
  - Joins O(_input) into one line that systemd splits back into exactly the same arguments.
  - Each argument is put in double quotes with C(\\) and C(") escaped, C(%) doubled (unit
    specifiers) and C($) doubled (environment expansion), so user arguments such as
    C(--lr=1e-3%) or C($HOME) reach the program as written.
  - Refuses arguments with newlines or NUL characters.
options:
  _input:
    description: The program and its arguments.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Render an ExecStart line
  ansible.builtin.debug:
    msg: "ExecStart={{ ['/usr/bin/python3', 'train.py', '--name', 'a b'] | onprem.torchrun.systemd_exec_args }}"
"""

RETURN = r"""
_value:
  description: The quoted command line.
  type: str
"""

from ansible.errors import AnsibleFilterError


def systemd_exec_args(args):
    """Return ``args`` quoted for ExecStart=."""
    if isinstance(args, (str, bytes)) or not hasattr(args, "__iter__"):
        raise AnsibleFilterError("systemd_exec_args: expected a list of arguments, got %s" % type(args).__name__)
    quoted = []
    for arg in args:
        arg = str(arg)
        if "\n" in arg or "\0" in arg or "\r" in arg:
            raise AnsibleFilterError("systemd_exec_args: argument %r has a line break or NUL" % arg)
        arg = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
        quoted.append('"%s"' % arg)
    return " ".join(quoted)


class FilterModule:
    """onprem.torchrun filters for systemd units."""

    def filters(self):
        return {"systemd_exec_args": systemd_exec_args}
