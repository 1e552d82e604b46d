# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The project_hash filter: one hash of a training project folder on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: project_hash
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: One sha256 over a project folder's files, as the nodes compute it for their copy
description:
  - Walks O(_input) on the controller, leaves out what O(excludes) matches (in any path component,
    as rsync's C(--exclude)), and hashes every file's relative path and content in sorted order.
  - M(onprem.torchrun.node_probe) computes the same hash of the node's copy (option C(project)), so launch
    names a node whose copy differs.
options:
  _input:
    description: The project folder on the controller.
    type: path
    required: true
  excludes:
    description: Patterns left out of the project (C(torchrun_project_excludes), what the copy to the nodes leaves out).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The project's hash
  ansible.builtin.debug:
    msg: "{{ '/home/me/project' | onprem.torchrun.project_hash(torchrun_project_excludes) }}"
"""

RETURN = r"""
_value:
  description: The hex sha256 of the project's files.
  type: str
"""

import os

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils import project


def project_hash(root, excludes):
    """Return the hash of the project folder ``root`` (see DOCUMENTATION)."""
    if not os.path.isdir(str(root)):
        raise AnsibleFilterError("project_hash: %s is not a folder on the controller" % root)
    return project.project_hash(str(root), [str(e) for e in excludes])


class FilterModule:
    """onprem.torchrun filters for a training project."""

    def filters(self):
        return {"project_hash": project_hash}
