# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The installed_drift filter: which of the job's files on a node differ from what this run would install."""

from __future__ import annotations

DOCUMENTATION = r"""
name: installed_drift
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: The job's files on a node that differ from this run's settings
description:
  - Compares what setup installed on a node (the file facts P(onprem.torchrun.node_probe#module) read with
    its C(files) option) with what this run's settings render (the same templates, rendered on the
    controller), as the template module compares them in check mode - content (sha1), owner C(root),
    group and mode - without a round trip per file.
  - A file that is missing, a link or no regular file differs.
options:
  _input:
    description: The files as the launcher installs them - each with C(dest), C(group) and C(mode).
    type: list
    elements: dict
    required: true
  rendered:
    description: Each file's content as this run renders it, in the order of O(_input).
    type: list
    elements: str
    required: true
  found:
    description: What node_probe found, by path (its RV(onprem.torchrun.node_probe#module:files)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse a node whose files differ
  ansible.builtin.assert:
    that: drifted | length == 0
  vars:
    drifted: "{{ files | onprem.torchrun.installed_drift(query('ansible.builtin.template', *(files | map(attribute='src'))), probe.files) }}"
"""

RETURN = r"""
_value:
  description: The paths (C(dest)) that differ, in the order of O(_input).
  type: list
  elements: str
"""

import hashlib

from ansible.errors import AnsibleFilterError


def _mode(value):
    """A mode as the files list gives it - "0640" (text, octal) or 416 (a YAML number) - as node_probe reports it."""
    return "%04o" % (value if isinstance(value, int) else int(str(value), 8))


def installed_drift(files, rendered, found):
    """The dests of ``files`` whose node copy differs from ``rendered``."""
    if not isinstance(files, (list, tuple)) or not isinstance(rendered, (list, tuple)) or len(files) != len(rendered):
        raise AnsibleFilterError("installed_drift: expects the files and as many rendered contents (got %r and %r)"
                                 % (type(files).__name__, type(rendered).__name__))
    drifted = []
    for item, content in zip(files, rendered):
        node = (found or {}).get(item["dest"]) or {}
        wanted = {"exists": True, "sha1": hashlib.sha1(str(content).encode("utf-8")).hexdigest(),  # noqa: S324 - as template compares
                  "owner": "root", "group": str(item["group"]), "mode": _mode(item["mode"])}
        if any(node.get(key) != value for key, value in wanted.items()):
            drifted.append(item["dest"])
    return drifted


class FilterModule:
    """The job's installed files against this run's settings."""

    def filters(self):
        return {"installed_drift": installed_drift}
