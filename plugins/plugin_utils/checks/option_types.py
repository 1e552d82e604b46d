# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Types: every role option as its spec declares it."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.common.validation import check_type_bool
from ansible.module_utils.common.validation import check_type_int
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, Problem, SECRETS, problem, shown


def _convert(value: Any, spec: dict) -> Any:
    """Convert ``value`` to the spec's type the way Ansible's argument specs accept it; raise TypeError."""
    kind = spec.get("type", "raw")
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, float):
            raise TypeError("not a whole number")
        return check_type_int(value.strip() if isinstance(value, str) else value)
    if kind == "bool":
        return check_type_bool(value)
    if kind in ("str", "path"):
        if isinstance(value, (dict, list)):
            raise TypeError("a %s, not a string" % type(value).__name__)
        return value if isinstance(value, str) else ("true" if value is True else "false" if value is False else str(value))
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            raise TypeError("a %s, not a list" % ("string" if isinstance(value, str) else type(value).__name__))
        element = {"type": spec["elements"]} if spec.get("elements") else None
        return [_convert(item, element) if element else item for item in value]
    if kind == "dict":
        if not isinstance(value, dict):
            raise TypeError("a %s, not a mapping" % ("string" if isinstance(value, str) else type(value).__name__))
        return dict(value)
    return value


def _type_fix(name: str, spec: dict, value: Any) -> str:
    kind = spec.get("type")
    if kind == "int":
        return "must be a whole number"
    if kind == "bool":
        return "must be true or false"
    if kind == "list" and isinstance(value, str):
        return ("must be a list; -e name=value always gives a string, so pass lists as JSON: "
                "-e '{\"%s\": [...]}'" % name)
    if kind == "list":
        return "must be a list of %s" % {"int": "whole numbers", "str": "strings"}.get(spec.get("elements"), "values")
    if kind == "dict" and isinstance(value, str):
        return ("must be a mapping; -e name=value always gives a string, so pass mappings as JSON: "
                "-e '{\"%s\": {...}}'" % name)
    return "must be a %s" % {"dict": "mapping", "path": "path", "str": "string"}.get(kind, kind)


def types(c: Cluster) -> list[Problem]:
    """Convert each value to its spec type (``-e key=value`` gives strings); refuse what does not convert.

    Runs first: the other areas see converted values only, and a value refused here is left out.
    """
    found = []
    for host in c.hosts:
        for name, value in list(c.values[host].items()):
            spec = c.specs.get(name)
            if spec is None:
                continue
            secret = name in SECRETS
            try:
                converted = _convert(value, spec)
            except (TypeError, ValueError):
                del c.values[host][name]
                text = "(hidden)" if secret else shown(value)
                found.append(problem(host, name, "%s=%s %s" % (name, text, _type_fix(name, spec, value))))
                continue
            choices = spec.get("choices")
            if choices and converted not in choices:
                del c.values[host][name]
                found.append(problem(host, name, "%s=%s must be one of %s" % (name, shown(converted), ", ".join(map(str, choices)))))
                continue
            c.values[host][name] = converted
    return found
