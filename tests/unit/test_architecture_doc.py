"""docs/architecture.md is true to the code: every file or folder of the checkout it names exists,
and every role variable (__name) it names is set by some role (vars, defaults, set_fact or register)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
TOP = ("roles/", "plugins/", "playbooks/", "sandbox/", "tests/", "tools/", "bench/", "docs/", "examples/", "extensions/")
ROLE_TEXT = "\n".join(path.read_text() for path in (ROOT / "roles").rglob("*.yml"))


def named_paths():
    """Paths of the checkout the document names (in backticks or in its diagram), without placeholders."""
    found = set()
    for token in re.findall(r"[A-Za-z0-9_./-]+", DOC):
        token = token.rstrip(".,:;)")
        if token.startswith(TOP) and "<" not in token and "*" not in token:
            found.add(token)
    return sorted(found)


def test_every_file_the_document_names_exists():
    paths = named_paths()
    assert len(paths) > 10, paths  # the diagram and the tables name many
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert not missing, missing


def test_every_role_variable_the_document_names_is_set_by_a_role():
    names = sorted(set(re.findall(r"\b(__[a-z][a-z0-9_]+)", DOC)))
    assert "__torchrun_ports" in names and len(names) > 5, names
    unset = [name for name in names if not re.search(r"(^|\s)%s:|register: %s\b|set_fact:[\s\S]{0,400}?\b%s:" % (name, name, name),
                                                       ROLE_TEXT, re.M)]
    assert not unset, unset


def test_relative_role_files_in_the_diagram_exist_in_the_torchrun_role():
    # "tasks/user.yml", "vars/main.yml" next to roles/torchrun in the diagram are that role's files.
    block = DOC.split("roles/torchrun", 1)[1].split("roles/preflight", 1)[0]
    for relative in re.findall(r"\b((?:tasks|vars|defaults)/[a-z_]+\.yml)", block):
        assert (ROOT / "roles" / "torchrun" / relative).exists(), relative
