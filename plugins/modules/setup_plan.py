#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""setup_plan: the action plugin (plugins/action/setup_plan.py) computes the digests and reads the kept ones;
this module, run by it on the node, keeps new ones (O(keep))."""

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
    description: The roles of the collection to digest. One of O(roles) and O(keep) is required.
    type: list
    elements: str
  path:
    description: Where the node keeps the digests of the roles' last runs.
    type: path
    required: true
  node:
    description:
      - What the node is - its release, kernel and machine, as the probe read them - an input of every role
        digested. A node upgraded or booted into another kernel runs every role again (the NVIDIA role's
        packages follow the release and the kernel), without gathering the node's facts to find out.
    type: dict
    default: {}
  keep:
    description:
      - The digests to keep in O(path) (what RV(stored) and RV(fingerprints) of a read make up), written as
        JSON. Never shown (no_log); no diff either, since they cover secrets.
    type: dict
attributes:
  action:
    description: The digests are computed on the controller; the node is only read (O(path)).
    support: full
  check_mode:
    description:
      - Reads O(path) in check mode as in a run, so C(--check) shows which roles would be skipped. With
        O(keep), says whether the file would change and writes nothing.
    support: full
  diff_mode:
    description: No diff, when it reads or when it keeps (O(keep)); the digests cover secrets.
    support: none
"""

EXAMPLES = r"""
- name: Read which setup roles' inputs changed
  onprem.torchrun.setup_plan:
    roles: [preflight, firewall, connectivity, launcher]
    path: /etc/torchrun/train.setup.json
    node: "{{ {'release': probe.os_id} | combine(probe.uname) }}"  # probe - onprem.torchrun.node_probe's result
  register: plan

- name: Keep the digests of the roles that ran
  onprem.torchrun.setup_plan:
    path: /etc/torchrun/train.setup.json
    keep: "{{ plan.stored | combine(plan.fingerprints) }}"
"""

RETURN = r"""
fingerprints:
  description:
    - Each role's C(digest) for this run, and its C(inputs) - a short digest of
      each input's value, by name (none for a secret, which the role's digest alone covers), and of the files.
  returned: when reading
  type: dict
stored:
  description:
    - What the node kept from the last run, in the same form (no role when it has none, or another machine's),
      and the node's machine id under C((machine)), for the play to keep with the new digests.
  returned: when reading
  type: dict
exists:
  description: Whether the node had O(path).
  returned: when reading
  type: bool
unchanged:
  description: The roles and inputs whose digest is the one the node kept.
  returned: when reading
  type: list
  elements: str
changed_inputs:
  description:
    - For each role that is not unchanged, the inputs whose values differ from the kept ones (C((no digest kept))
      on a node that ran none yet); empty where only a secret changed.
  returned: when reading
  type: dict
  sample: {"firewall": ["firewall_allow"], "launcher": ["torchrun_script_args"]}
"""


import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils import root_file


def keep(path: str, digests: dict, check: bool) -> bool:
    """The digests in path (root's, 0600, its folder made where missing) unless it holds them already; whether it changed."""
    folder = os.path.dirname(path)
    if not check and not os.path.isdir(folder):
        os.makedirs(folder, mode=0o755)
        os.chmod(folder, 0o755)
    text = json.dumps(digests, indent=4, sort_keys=True, separators=(",", ": "))  # as to_nice_json writes them
    return root_file.replace(path, text, 0o600, check)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "roles": {"type": "list", "elements": "str"},
            "path": {"type": "path", "required": True},
            "node": {"type": "dict", "default": {}},
            "keep": {"type": "dict", "no_log": True},
        },
        required_one_of=[("roles", "keep")],
        mutually_exclusive=[("roles", "keep")],
        supports_check_mode=True,
    )
    if module.params["keep"] is None:
        module.fail_json(msg="setup_plan reads the plan in its action plugin; run it as a task (onprem.torchrun.setup_plan)")
    try:
        changed = keep(module.params["path"], module.params["keep"], module.check_mode)
    except OSError as error:
        module.fail_json(msg="setup_plan: could not keep the digests in %s: %s" % (module.params["path"], error))
    module.exit_json(changed=changed)


if __name__ == "__main__":
    main()
