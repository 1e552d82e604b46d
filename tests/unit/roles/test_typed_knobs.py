"""Every number and yes/no knob works as `-e key=value` gives it: a string.

`-e job_join_timeout=120` hands the roles the string "120"; argument specs accept it but do
not convert it, so arithmetic, comparisons and conditions on it fail or go wrong ("false" is a
true string). The validator refuses what does not convert; the roles cast where they read: this
test walks every role's specs and fails on a read of an int or bool knob (or a list of ints)
without `| int`, `| bool` or `map('int')`.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "roles"
CAST = {"int": r"\s*\|\s*int\b", "bool": r"\s*\|\s*bool\b", "list-int": r"\s*\|\s*(?:map\('int'\)|first\s*\|\s*int|last\s*\|\s*int|length)"}


def typed_options():
    found = {}
    for path in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        for entry in (yaml.safe_load(path.read_text())["argument_specs"] or {}).values():
            for name, spec in (entry.get("options") or {}).items():
                kind = spec.get("type")
                if kind == "list" and spec.get("elements") == "int":
                    kind = "list-int"
                if kind in CAST:
                    found[name] = kind
    return found


OPTIONS = typed_options()


def sources():
    for path in sorted(ROLES.rglob("*")):
        if path.is_file() and path.suffix in (".yml", ".j2") and not {"meta", "defaults"} & set(path.relative_to(ROLES).parts):
            yield path
    yield from sorted((ROOT / "playbooks").glob("*.yml"))


CONDITION = re.compile(r"^(\s*)(?:-\s+)?(?:when|that|until|changed_when|failed_when):(.*)$")


def expressions(text):
    """The Jinja a file evaluates: {{ }} and {% %} blocks, and the values of condition keys (raw Jinja)."""
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    found = re.findall(r"\{\{.*?\}\}|\{%.*?%\}", text, flags=re.S)
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = CONDITION.match(line)
        if not match:
            continue
        if match.group(2).strip():
            found.append(match.group(2))
            continue
        indent = len(match.group(1))
        for item in lines[number + 1:]:  # a block list of conditions below the key
            if not item.strip() or len(item) - len(item.lstrip()) <= indent or not item.lstrip().startswith("- "):
                break
            found.append(item.strip()[2:])
    return found


def uncast_reads(text, name, kind):
    bad = []
    for expression in expressions(text):
        for match in re.finditer(r"(?<![\w.'\"])%s\b" % re.escape(name), expression):
            rest = expression[match.end():]
            if re.match(CAST[kind], rest) or re.match(r"\s*is\s+(?:not\s+)?defined|\s*\|\s*default\([^)]*\)" + CAST[kind], rest):
                continue
            bad.append(" ".join(expression.split())[:160])
    return bad


def test_the_walk_finds_the_knobs():
    assert OPTIONS["job_join_timeout"] == "int" and OPTIONS["job_wait"] == "bool"
    assert OPTIONS["torchrun_collective_port_range"] == "list-int"
    assert uncast_reads("retries: {{ job_join_timeout / 10 }}", "job_join_timeout", "int")
    assert not uncast_reads("retries: {{ job_join_timeout | int / 10 }}", "job_join_timeout", "int")


@pytest.mark.parametrize("path", list(sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_typed_knob_is_cast_where_it_is_read(path):
    text = path.read_text()
    problems = []
    for name, kind in OPTIONS.items():
        problems += ["%s (%s): %s" % (name, kind, read) for read in uncast_reads(text, name, kind)]
    assert not problems, "\n".join(problems)
