# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for onprem.torchrun.validate: check the training group on the controller."""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible_collections.onprem.torchrun.plugins.plugin_utils import checks

ROLES = Path(__file__).resolve().parents[2] / "roles"
# The fact a passed validation of every setting leaves on the play's hosts: the play's id.
PASSED = "__validate_passed_in_play"


def play_of(task) -> str:
    """The id of the play ``task`` runs in ('' where it cannot be told)."""
    node = task
    while node is not None:
        play = getattr(node, "_play", None)
        if play is not None:
            return str(getattr(play, "_uuid", "") or "")
        node = getattr(node, "_parent", None)
    return ""


class ActionModule(ActionBase):
    """Run the preflight validator over hostvars (and node facts); never contacts a node."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("group", "facts", "fail", "whole_group", "partial_var", "areas"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _args, params = self.validate_argument_spec(argument_spec={
            "group": {"type": "str", "required": True},
            "facts": {"type": "str", "default": ""},
            "fail": {"type": "bool", "default": True},
            "whole_group": {"type": "bool", "default": False},
            "partial_var": {"type": "str", "default": ""},
            "areas": {"type": "list", "elements": "str", "default": [], "choices": [area.__name__ for area in checks.AREAS]},
        })
        hostvars = task_vars["hostvars"]
        hosts = list(task_vars["groups"].get(params["group"], []))
        # Every setting, in a play where they passed already (setup.yml's own check, then the validate role
        # as every role's dependency): the settings are the play's, so they pass again; read once.
        every_setting = not params["facts"] and not params["areas"]
        play = play_of(self._task)
        passed = task_vars.get(PASSED) or {}
        if every_setting and not params["whole_group"] and play and isinstance(passed, dict) \
                and passed.get("play") == play and passed.get("group") == params["group"]:
            result.update(changed=False, problems=[], notes=[], hosts=hosts, addresses=passed.get("addresses", []), validated_before=True,
                          msg="preflight: %d node(s) in group %s, no problem found (earlier in this play)" % (len(hosts), params["group"]))
            return result
        specs, defaults = checks.load_roles(ROLES)

        def template(host, value, merged):
            # The host's own values are rendered by hostvars already; a role default may refer to
            # another role variable, which ``merged`` holds for this host.
            return self._templar.copy_with_new_env(available_variables=merged).template(value)

        values, found = checks.effective_values(hosts, hostvars, defaults, specs, template)
        cluster = checks.Cluster(group=params["group"], hosts=hosts, values=values, specs=specs)
        # The names each host sets itself (inventory, group and extra vars), for unknown_settings.
        cluster.given = {host: [str(name) for name in hostvars[host]] for host in hosts}
        if params["facts"]:
            cluster.facts = {}
            for host in hosts:
                probe = hostvars[host].get(params["facts"]) if params["facts"] in hostvars[host] else None
                if isinstance(probe, dict) and not probe.get("skipped"):
                    cluster.facts[host] = self._templar.template(probe)
        script = values.get(hosts[0], {}).get("torchrun_script") if hosts else None
        on_node = values.get(hosts[0], {}).get("torchrun_script_on_node") if hosts else None
        if isinstance(script, str) and on_node in (False, "false", "False", "no"):
            cluster.script_on_controller = checks.script_found(script, ROLES, task_vars.get("playbook_dir", "."))
        areas = [area for area in checks.AREAS if area.__name__ in params["areas"]] if params["areas"] else checks.AREAS
        found += checks.validate(cluster, areas)
        if params["whole_group"]:
            found += checks.whole_group(cluster, task_vars.get("ansible_play_hosts_all", hosts), params["partial_var"])
        result["problems"] = [{"host": p.host, "var": p.var, "message": p.message} for p in found]
        result["notes"] = checks.notes(cluster) if cluster.facts is not None and not found else []
        result["hosts"] = hosts
        result["addresses"] = [cluster.addresses.get(host) for host in hosts]
        result["changed"] = False
        if found and params["fail"]:
            result["failed"] = True
            # One problem per line, in one string: the error line of every callback shows it line by line,
            # with or without our ansible.cfg (a list is printed as one Python or JSON line there).
            result["msg"] = "\n".join(["preflight found %d problem(s); nothing was changed" % len(found)] + [p.message for p in found])
        else:
            result["msg"] = "preflight: %d node(s) in group %s, no problem found" % (len(hosts), params["group"])
            if every_setting and not found and play:
                # On every host of the play (a run_once task's facts are the play's).
                result["ansible_facts"] = {PASSED: {"play": play, "group": params["group"], "addresses": result["addresses"]}}
        return result
