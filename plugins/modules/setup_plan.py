#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the setup_plan action plugin (plugins/action/setup_plan.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: setup_plan
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: Say which setup roles' inputs changed since their last run on a node
description:
  - For each role named, a digest of what its run depends on, computed on the controller - the
    rendered values of the variables its files name (its options, the contract settings, the lazy
    variables of the roles and what they refer to, the cluster's hosts, addresses and master, the
    connection variables) and the role's, the contract role's and the plugins' files.
  - Reads the digests the node kept from the last run (one command reads /etc/machine-id and O(path), a
    JSON object of root's) and returns which are unchanged. Digests kept under another machine id (a disk
    or image cloned from a set-up node) count as none. Writes nothing; the play writes O(path) once its
    roles ran.
  - C(train.yml) skips a setup role whose digest is unchanged (C(setup_skip_unchanged)); C(setup.yml)
    alone runs every role and keeps the digests.
options:
  roles:
    description: The roles of the collection to digest.
    type: list
    elements: str
    required: true
  path:
    description: Where the node keeps the digests of the roles' last runs.
    type: path
    required: true
  extra:
    description: Other inputs, by name, each digested alone (the project's hash).
    type: dict
    default: {}
attributes:
  action:
    description: The digests are computed on the controller; the node is only read (O(path)).
    support: full
  check_mode:
    description: Reads O(path) in check mode as in a run, so C(--check) shows which roles would be skipped.
    support: full
  diff_mode:
    description: No diff; the play's task that keeps the digests shows none either (they cover secrets).
    support: none
"""

EXAMPLES = r"""
- name: Read which setup roles' inputs changed
  onprem.torchrun.setup_plan:
    roles: [preflight, firewall, connectivity, launcher]
    path: /etc/torchrun/train.setup.json
    extra:
      project: "{{ torchrun_project_dir | onprem.torchrun.project_hash }}"
  register: plan
"""

RETURN = r"""
fingerprints:
  description:
    - Each role's (and each O(extra) input's) C(digest) for this run, and its C(inputs) - a short digest of
      each input's value, by name (none for a secret, which the role's digest alone covers), and of the files.
  returned: always
  type: dict
stored:
  description:
    - What the node kept from the last run, in the same form (no role when it has none, or another machine's),
      and the node's machine id under C((machine)), for the play to keep with the new digests.
  returned: always
  type: dict
exists:
  description: Whether the node had O(path).
  returned: always
  type: bool
unchanged:
  description: The roles and inputs whose digest is the one the node kept.
  returned: always
  type: list
  elements: str
changed_inputs:
  description:
    - For each role that is not unchanged, the inputs whose values differ from the kept ones (C((no digest kept))
      on a node that ran none yet); empty where only a secret changed.
  returned: always
  type: dict
  sample: {"firewall": ["firewall_allow"], "launcher": ["torchrun_script_args"]}
"""
