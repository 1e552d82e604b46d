# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Building the cluster: each role's variables with that role's defaults."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

import yaml
from ansible.template import trust_as_template
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Problem, SECRETS, problem


def role_options(specs: dict) -> dict[str, dict]:
    """Every option of every entry point of a role's meta/argument_specs.yml."""
    options: dict[str, dict] = {}
    for entry in (specs or {}).get("argument_specs", {}).values():
        for name, spec in (entry.get("options") or {}).items():
            options.setdefault(name, spec)
    return options


def trusted(value: Any) -> Any:
    """The collection's own role defaults may be templates: mark them so a templar renders them."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(item) for item in value]
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    return value


# libyaml's loader where PyYAML was built with it.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str) -> Any:
    """One of the collection's own YAML files (plain data: no vault, no tags). Ten times faster than
    Ansible's loader, which tags every value with where it came from; the defaults are marked as
    templates by ``trusted`` where they are read."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_LOADER)  # noqa: S506  a safe loader, C or Python


def each_role(roles_dir: Any, relative: str, load: Callable[[str], Any] = read_yaml) -> list[Any]:
    """That file (``relative`` to a role's folder, such as vars/main.yml) of every role that has it,
    read with ``load(path)``, in the roles' order."""
    found = []
    for role in sorted(os.listdir(str(roles_dir))):
        path = os.path.join(str(roles_dir), role, relative)
        if os.path.isfile(path):
            found.append(load(path))
    return found


def merged(documents: Iterable[Any]) -> dict[str, Any]:
    """YAML mappings merged (the collection keeps each name to one role)."""
    out: dict[str, Any] = {}
    for document in documents:
        out.update(document or {})
    return out


def load_roles(roles_dir: Any, load: Callable[[str], Any] = read_yaml) -> tuple[dict[str, dict], dict[str, Any]]:
    """Every role's options (from its argument specs) and defaults (trusted), read with ``load(path)``."""
    specs: dict[str, dict] = {}
    for document in each_role(roles_dir, os.path.join("meta", "argument_specs.yml"), load):
        specs.update(role_options(document))
    return specs, trusted(merged(each_role(roles_dir, os.path.join("defaults", "main.yml"), load)))


# Host variables the rules read besides the roles' options.
HOST_VARIABLES = ("ansible_host", "ansible_port", "ansible_user", "torchrun_address", "torchrun_node_rank",
                  "ansible_os_family", "ansible_distribution")


def effective_values(hosts: list[str], hostvars: Any, defaults: dict[str, Any], names: Iterable[str],
                     template: Callable[[str, Any, dict], Any]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Each host's value of each name: its own (inventory, group, extra vars) or else the role default.

    ``template(host, value, variables)`` renders a value with the host's variables; a value that
    cannot be rendered is reported and left out.
    """
    values: dict[str, dict[str, Any]] = {}
    found = []
    wanted = list(dict.fromkeys(list(names) + list(HOST_VARIABLES)))
    for host in hosts:
        hvars = hostvars[host]
        merged = dict(defaults)
        values[host] = {}
        # First the host's own values (hostvars renders them on access), so that a role default
        # which refers to another setting is rendered with the host's value of it, not its default.
        own = [name for name in wanted if name in hvars]
        for name in own + [name for name in wanted if name not in hvars and name in defaults]:
            try:
                values[host][name] = hvars[name] if name in hvars else template(host, merged[name], merged)
                merged[name] = values[host][name]
            except Exception as err:  # noqa: BLE001  an inventory template can fail in any way
                merged.pop(name, None)
                why = "(details hidden: a secret)" if name in SECRETS else (str(err).splitlines() or [type(err).__name__])[0]
                found.append(problem(host, name, "%s could not be evaluated: %s" % (name, why)))
    return values, found
