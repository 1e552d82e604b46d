# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a setup role's run depends on, as one digest (the action onprem.torchrun.setup_plan).

A role's inputs are the variables its files name and the files themselves. The names are read
from the role's own folder and the contract role's shared tasks (every setup role includes only
those): a role option, a contract setting, a lazy variable of any role's vars/main.yml (whose own
definition is read in turn, so a name it refers to counts too), a place fact of the contract role
(the hosts, addresses, master) or a connection variable. Facts and results registered in the role
are not inputs: they are what the run reads from the node. The digest covers the values of those
names (rendered for the host), the role's files, the contract role's files and the plugins', so a
new release of the collection runs every role again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Callable, Iterable

NAME = re.compile(r"\b(_{0,2}[a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")
# Connection variables a role may read (the firewall keeps the SSH port Ansible connects to open).
CONNECTION = ("ansible_host", "ansible_port", "ansible_user")
# Ansible puts a per-run token into an omitted value; it says nothing about the settings.
OMIT = re.compile(r"__omit_place_holder__[0-9a-f]+")
TASKS_FROM = re.compile(r"tasks_from:\s*([A-Za-z0-9_.-]+\.yml)")
TEXT_SUFFIXES = (".yml", ".yaml", ".j2", ".py", ".sh", ".cfg", ".conf", ".txt", ".md", ".json")


def _files(*tops: str) -> list[str]:
    found = []
    for top in tops:
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            # Documentation changes nothing a role does on a node.
            found += [os.path.join(folder, name) for name in sorted(files) if not name.endswith((".pyc", ".md"))]
    return sorted(set(found))


def role_files(root: str, role: str) -> list[str]:
    """The files of a role's own folder (its run also reads shared_files)."""
    return _files(os.path.join(root, "roles", role))


def shared_files(root: str) -> list[str]:
    """The files every setup role's run reads besides its own: the contract role's and the plugins'
    (digested once per run, combined with each role's own)."""
    return _files(os.path.join(root, "roles", "torchrun"), os.path.join(root, "plugins"))


def combined(*digests: str) -> str:
    """One digest of several."""
    return hashlib.sha256("\0".join(digests).encode()).hexdigest()


def files_digest(paths: Iterable[str], root: str) -> str:
    """One digest of the files' paths (relative to ``root``) and contents."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.path.relpath(path, root).encode() + b"\0")
        with open(path, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def referenced(text: str) -> set[str]:
    """Every identifier in ``text`` that could be a variable name (lowercase words joined by _)."""
    return set(NAME.findall(text))


def role_names(texts: Iterable[str], known: set[str], lazy: dict[str, str]) -> set[str]:
    """The variable names a role's files (``texts``) depend on.

    ``known``: the variables that are settings (role options, contract settings, place facts,
    connection variables); ``lazy``: each lazy variable's definition, as text. A lazy variable
    counts with the names of its definition, read in turn.
    """
    todo = set()
    for text in texts:
        todo |= referenced(text)
    names: set[str] = set()
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in known:
            names.add(name)
        if name in lazy:
            names.add(name)
            todo |= referenced(lazy[name])
    return names


def _text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith((".yml", ".yaml")):  # a comment names what it explains, not what the role reads
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return text


def role_texts(root: str, role: str) -> list[str]:
    """The text of the role's own files (not its meta) and of the contract role's task files it
    includes (tasks_from), read in turn; the contract role's lazy variables count where named."""
    texts = []
    for folder, dirs, files in os.walk(os.path.join(root, "roles", role)):
        dirs[:] = sorted(d for d in dirs if d != "meta")
        texts += [_text(os.path.join(folder, name)) for name in sorted(files) if name.endswith(TEXT_SUFFIXES)]
    shared = os.path.join(root, "roles", "torchrun", "tasks")
    todo = [name for text in texts for name in TASKS_FROM.findall(text)] if role != "torchrun" else []
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        path = os.path.join(shared, name)
        if name in seen or not os.path.isfile(path):
            continue
        seen.add(name)
        texts.append(_text(path))
        todo += TASKS_FROM.findall(texts[-1])
    return texts


def canonical(value: Any) -> str:
    """A stable text of a rendered value (sorted keys; the omit token normalised)."""
    return OMIT.sub("__omit__", json.dumps(value, sort_keys=True, default=str))


def digest(values: dict[str, Any], files: str) -> str:
    """The role's fingerprint: its inputs' values (by name) and its files' digest."""
    blob = "\n".join("%s=%s" % (name, canonical(values[name])) for name in sorted(values))
    return hashlib.sha256((files + "\n" + blob).encode()).hexdigest()


def input_digests(values: dict[str, Any], secrets: Iterable[str] = ()) -> dict[str, str]:
    """A short digest of each input's value, to name what changed; none for a secret (the role's digest
    covers it)."""
    return {name: hashlib.sha256(canonical(value).encode()).hexdigest()[:16] for name, value in values.items() if name not in set(secrets)}


def changed_inputs(now: dict[str, str], kept: dict[str, str]) -> list[str]:
    """The inputs whose value differs from the kept one (new or gone ones too), sorted."""
    return sorted(name for name in set(now) | set(kept) if now.get(name) != kept.get(name))


def values_of(names: Iterable[str], render: Callable[[str], Any], lazy: dict[str, str]) -> dict[str, Any]:
    """Each name's rendered value; a lazy variable that cannot be rendered yet (it reads what the role
    registers on the node) is left out: the names of its definition are inputs of their own."""
    values = {}
    for name in sorted(names):
        try:
            values[name] = render(name)
        except Exception:  # noqa: BLE001  an undefined result of the role itself, in any form
            if name not in lazy:
                values[name] = None  # unset: a setting the host does not give and no role defaults
    return values
