# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The project_requirements filter: what a training project's requirements file installs."""

from __future__ import annotations

DOCUMENTATION = r"""
name: project_requirements
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: Read a training project's requirements file on the controller
description:
  - Reads O(file) inside the project folder O(_input) on the controller and returns what the roles need
    to install it on every node (the pytorch role), compare its packages across the nodes (the stack
    report) and refuse a node without them (launch).
  - Nothing to install when O(_input) or O(file) is empty, or when O(file) is C(requirements.txt) and the
    project has none. The validator (M(onprem.torchrun.validate)) refuses everything else that would fail
    or install differently per node (a missing file of another name, includes, paths, URLs, editable
    installs, index options) before any node is changed.
options:
  _input:
    description: The project folder on the controller (C(torchrun_project_dir)).
    type: str
    required: true
  file:
    description: The requirements file, relative to the project (C(torchrun_project_requirements)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The project's packages
  ansible.builtin.debug:
    msg: "{{ (torchrun_project_dir | onprem.torchrun.project_requirements(torchrun_project_requirements)).names }}"
"""

RETURN = r"""
_value:
  description: What the requirements file installs.
  type: dict
  contains:
    path:
      description: The file on the controller; empty when nothing is installed.
      type: str
    names:
      description: The names of the packages it lists, as written.
      type: list
      elements: str
    specifiers:
      description: >-
        The requirement specifiers, for pip's list of names, when every line is a plain one; empty when the
        file must be installed as a file (hashes, markers, global options) or installs nothing.
      type: list
      elements: str
    unpinned:
      description: Names not pinned to one version (C(==)); pip may resolve them differently over time.
      type: list
      elements: str
    hashed:
      description: Whether the file carries hashes (pip's hash-checking mode).
      type: bool
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.plugin_utils import requirements


def project_requirements(project, file):
    """Return what ``file`` of the project folder ``project`` installs (see DOCUMENTATION)."""
    try:
        path, found = requirements.read(str(project or ""), str(file or ""))
    except FileNotFoundError as error:
        raise AnsibleFilterError("project_requirements: %s is not a file on the controller" % error) from error
    if found is None:
        return {"path": "", "names": [], "specifiers": [], "unpinned": [], "hashed": False}
    if found.problems:
        raise AnsibleFilterError("project_requirements: %s: %s" % (path, "; ".join(found.problems)))
    return {"path": path, "names": found.names, "specifiers": found.specifiers or [], "unpinned": found.unpinned,
            "hashed": found.hashed}


class FilterModule:
    """onprem.torchrun filters for a training project's requirements."""

    def filters(self):
        return {"project_requirements": project_requirements}
