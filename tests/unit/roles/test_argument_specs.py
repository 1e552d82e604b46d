"""Every role's meta/argument_specs.yml is the one description of its variables.

Each default in defaults/main.yml has a spec option with the same default; each option has a type
and a description; a role reads only its own `<role>_*` knobs and the cluster-wide `torchrun_*`
contract (described in the torchrun role); and every variable a role's tasks or templates read by
those prefixes is described somewhere.
"""

import re
from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir())
PREFIXES = tuple(sorted({name + "_" for name in NAMES} | {"torchrun_"}))


def load(path):
    return yaml.safe_load(path.read_text()) if path.exists() else None


def options(role):
    specs = load(ROLES / role / "meta" / "argument_specs.yml") or {}
    found = {}
    for entry in (specs.get("argument_specs") or {}).values():
        found.update(entry.get("options") or {})
    return found


def text(spec):
    description = spec.get("description") or ""
    return description if isinstance(description, str) else " ".join(description)


def all_described():
    return {name for role in NAMES for name in options(role)}


@pytest.mark.parametrize("role", NAMES)
def test_role_has_argument_specs(role):
    specs = load(ROLES / role / "meta" / "argument_specs.yml")
    assert specs and "main" in specs["argument_specs"], role
    assert specs["argument_specs"]["main"].get("short_description"), role


@pytest.mark.parametrize("role", NAMES)
def test_defaults_and_specs_agree(role):
    defaults = load(ROLES / role / "defaults" / "main.yml") or {}
    opts = options(role)
    problems = []
    for name, value in defaults.items():
        if name not in opts:
            problems.append("%s: default %s has no spec option" % (role, name))
        elif isinstance(value, str) and "{{" in value:
            # Computed at run time: the spec leaves default out and its description says how.
            if "default" in opts[name] or "default" not in text(opts[name]).lower():
                problems.append("%s: %s is computed (%s); its spec must say so in words, not as a default" % (role, name, value))
        elif opts[name].get("default") != value:
            problems.append("%s: %s defaults to %r but its spec says %r" % (role, name, value, opts[name].get("default")))
    for name, spec in opts.items():
        if "default" in spec and name not in defaults:
            problems.append("%s: spec gives %s a default that defaults/main.yml does not set" % (role, name))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", NAMES)
def test_every_option_is_typed_and_described(role):
    problems = []
    for name, spec in options(role).items():
        if not spec.get("type"):
            problems.append("%s: %s has no type" % (role, name))
        if not spec.get("description"):
            problems.append("%s: %s has no description" % (role, name))
        if not name.startswith((role + "_", "torchrun_")):
            problems.append("%s: %s is neither %s_* nor torchrun_*" % (role, name, role))
        if spec.get("type") == "list" and not spec.get("elements"):
            problems.append("%s: list %s has no elements type" % (role, name))
    assert not problems, "\n".join(problems)


def test_the_cluster_contract_is_described_once():
    owners = {}
    for role in NAMES:
        for name in options(role):
            if name.startswith("torchrun_"):
                owners.setdefault(name, []).append(role)
    defaults = load(ROLES / "torchrun" / "defaults" / "main.yml")
    assert set(defaults) <= set(owners)
    # Other roles may repeat a torchrun_* option in their own spec (entry points are checked on
    # their own), but only the torchrun role sets its default.
    for name, roles in owners.items():
        for role in roles:
            if role != "torchrun":
                default = options(role)[name].get("default")
                assert default is None or default == defaults.get(name), (name, role)


# Names the roles mention that are not inputs: refused on sight by preflight.
REFUSED = {"torchrun_node_rank"}


def results(role):
    """Facts, registered results and custom stats a role sets itself (its outputs, not knobs)."""
    names = set()
    for path in (ROLES / role / "tasks").rglob("*.yml"):
        for task in yaml.safe_load(path.read_text()) or []:
            for block in [task] + task.get("block", []) + task.get("rescue", []) + task.get("always", []):
                names.update((block.get("ansible.builtin.set_fact") or {}).keys())
                names.update(((block.get("ansible.builtin.set_stats") or {}).get("data") or {}).keys())
                if block.get("register"):
                    names.add(block["register"])
    return names


def test_every_variable_read_is_described():
    """A public variable used in tasks, templates or vars must be in some spec: no hidden knobs."""
    described = all_described() | REFUSED | {name for role in NAMES for name in results(role)}
    word = re.compile(r"(?<!\.)\b((?:%s)[a-z0-9_]+)\b" % "|".join(re.escape(p) for p in PREFIXES))
    missing = set()
    for role in NAMES:
        for path in (ROLES / role).rglob("*"):
            if path.is_file() and path.suffix in (".yml", ".j2") and "meta" not in path.parts:
                for name in word.findall(path.read_text()):
                    if name not in described:
                        missing.add("%s: %s" % (path.relative_to(ROLES), name))
    assert not missing, "\n".join(sorted(missing))
