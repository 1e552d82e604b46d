# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for onprem.torchrun.setup_plan: which setup roles' inputs changed on a node."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible_collections.onprem.torchrun.plugins.plugin_utils import fingerprint
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.build import each_role, load_roles, merged, trusted
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import SECRETS

ROOT = str(Path(__file__).resolve().parents[2])
ROLES = os.path.join(ROOT, "roles")
# The contract role's place facts (tasks/main.yml): the hosts, the node's rank and address, the master.
PLACE_FACTS = ("__torchrun_hosts", "__torchrun_nnodes", "__torchrun_nnodes_arg", "__torchrun_node_rank",
               "__torchrun_addresses", "__torchrun_address", "__torchrun_master", "__torchrun_master_addr")
# The key of the node's machine id in the digests file.
MACHINE = "(machine)"
# The name under which a role's own files count among its inputs.
FILES = "(the collection's files)"
# The name under which the node's own identity (its release, kernel and machine) counts among every role's inputs.
NODE = "(the node's release and kernel)"
_CACHE: dict = {}


def collection() -> dict:
    """What the plan reads of the collection's files, once per controller process."""
    if not _CACHE:
        specs, defaults = load_roles(ROLES)
        lazy = merged(each_role(ROLES, os.path.join("vars", "main.yml")))  # every role's lazy variables
        _CACHE.update(specs=specs, defaults=defaults, lazy=trusted(lazy),
                      lazy_text={name: json.dumps(value) for name, value in lazy.items()},
                      shared=fingerprint.files_digest(fingerprint.shared_files(ROOT), ROOT), roles={})
    return _CACHE


class ActionModule(ActionBase):
    """Digests of each role's inputs for this host, and the digests its node kept (one read)."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("roles", "path", "node", "keep"))

    def role(self, data: dict, role: str) -> tuple[set, str]:
        if role not in data["roles"]:
            known = set(data["specs"]) | set(PLACE_FACTS) | set(fingerprint.CONNECTION)
            names = fingerprint.role_names(fingerprint.role_texts(ROOT, role), known, data["lazy_text"])
            files = fingerprint.combined(fingerprint.files_digest(fingerprint.role_files(ROOT, role), ROOT), data["shared"])
            data["roles"][role] = (names, files)
        return data["roles"][role]

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _args, params = self.validate_argument_spec(argument_spec={
            "roles": {"type": "list", "elements": "str"},
            "path": {"type": "path", "required": True},
            "node": {"type": "dict", "default": {}},
            "keep": {"type": "dict", "no_log": True},
        }, required_one_of=[("roles", "keep")], mutually_exclusive=[("roles", "keep")])
        if params["keep"] is not None:  # the roles ran: the module keeps their digests on the node, in one call
            result.update(self._execute_module(module_name="onprem.torchrun.setup_plan", module_args={
                "path": params["path"], "keep": params["keep"]}, task_vars=task_vars))
            return result
        unknown = [role for role in params["roles"] if not os.path.isdir(os.path.join(ROLES, role))]
        if unknown:
            result.update(failed=True, msg="setup_plan: no role %s in the collection" % ", ".join(unknown))
            return result
        data = collection()
        # The role defaults, the host's own values over them, the lazy variables over both: as a role's task sees them.
        merged = dict(data["defaults"])
        merged.update(task_vars)
        merged.update(data["lazy"])
        merged["vars"] = merged  # the port model reads the settings as `vars`, as in a role's task
        templar = self._templar.copy_with_new_env(available_variables=merged)

        def render(name):
            if name not in merged:
                raise KeyError(name)
            return templar.template(merged[name])

        digests, inputs = {}, {}
        for role in params["roles"]:
            names, files = self.role(data, role)
            values = fingerprint.values_of(names, render, data["lazy_text"])
            if params["node"]:
                values[NODE] = params["node"]
            digests[role] = fingerprint.digest(values, files)
            inputs[role] = dict(fingerprint.input_digests(values, SECRETS), **{FILES: files[:16]})
        # One command: the node's machine id, then the digests it kept. Digests kept under another machine
        # id came with a cloned disk or image, not from a run on this node: they count as none.
        read = self._low_level_execute_command("cat /etc/machine-id; cat %s" % shlex.quote(params["path"]), sudoable=True)
        lines = (read.get("stdout") or "").split("\n", 1)
        machine = lines[0].strip()
        kept = {}
        try:
            kept = json.loads(lines[1]) if len(lines) > 1 and lines[1].strip() else {}
        except ValueError:
            kept = {}  # unreadable: every role runs, and the file is written again
        exists = bool(kept)
        if not isinstance(kept, dict) or not machine or kept.get(MACHINE) != machine:
            kept = {}
        kept = {key: value for key, value in kept.items() if isinstance(value, dict) and isinstance(value.get("digest"), str)}
        unchanged = sorted(key for key, value in digests.items() if kept.get(key, {}).get("digest") == value)
        # Why each other role runs: the inputs whose values changed (a secret's change shows as none).
        why = {key: fingerprint.changed_inputs(inputs[key], kept[key].get("inputs") or {}) if key in kept else ["(no digest kept)"]
               for key in digests if key not in unchanged}
        result.update(changed=False, fingerprints={key: {"digest": digests[key], "inputs": inputs[key]} for key in digests},
                      stored=dict(kept, **{MACHINE: machine}), exists=exists, unchanged=unchanged, changed_inputs=why)
        return result
