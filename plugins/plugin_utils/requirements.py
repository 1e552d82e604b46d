# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A training project's requirements file, read on the controller.

setup.yml installs it into the job's venv on every node (the pytorch role), the stack report
compares the packages it names across the nodes, and launch refuses a node whose venv lacks them.
Only what installs the same way on every node from the site's own package sources is accepted:
one file (no -r/-c includes), named packages (no paths, URLs or editable installs) and no index
options of its own (the sources are pytorch_index_url, pytorch_extra_index_urls, pytorch_find_links).
A file of plain ``name[extras]<specifier>`` lines is handed to pip as a list of specifiers (so
check mode and a second run compare exactly); a file with hashes or markers is installed as a file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

# The conventional name: a project without this file installs nothing; any other name must exist.
CONVENTIONAL = "requirements.txt"
NAME = re.compile(r"\A([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[A-Za-z0-9._,\s-]*\])?\s*(.*)\Z", re.S)
# A specifier list such as ">=1.2,<2" or "==0.9.0" (operators of PEP 440).
SPECIFIERS = re.compile(r"\A(?:\s*(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*)(?:,\s*(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*)*\Z")
PIN = re.compile(r"\A\s*===?\s*[A-Za-z0-9.+!_-]+\s*\Z")  # one exact version, no wildcard
INCLUDES = ("-r", "--requirement", "-c", "--constraint")
EDITABLE = ("-e", "--editable")
SOURCES = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index", "--trusted-host")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class Requirements:
    """What a requirements file asks for: its packages' names, the specifiers pip gets when every line
    is a plain one (else None: install the file), the names not pinned to one version, whether it
    carries hashes, and each line that cannot be installed identically on every node."""

    names: list[str] = field(default_factory=list)
    specifiers: list[str] | None = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)
    hashed: bool = False
    problems: list[str] = field(default_factory=list)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line: comments removed, backslash continuations joined."""
    found, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            found.append((start, line))
    if pending.strip():
        found.append((start, pending.strip()))
    return found


def _option(line: str) -> str:
    return re.split(r"[\s=]", line, maxsplit=1)[0]


def parse(text: str) -> Requirements:
    """Read a requirements file's text (see the module's description)."""
    result = Requirements()
    plain = True
    unhashed = []
    for number, line in logical_lines(text):
        where = "line %d (%s)" % (number, line if len(line) <= 60 else line[:57] + "...")
        if CONTROL.search(line):
            result.problems.append("%s holds control characters" % where)
            continue
        if line.startswith("-"):
            option = _option(line)
            if option in INCLUDES:
                result.problems.append("%s includes another file, which is not installed with it; list every package in this one file"
                                       % where)
            elif option in EDITABLE:
                result.problems.append("%s is an editable install from a folder or repository; put the code in the project (it is on "
                                       "the job's PYTHONPATH) or name a released package" % where)
            elif option in SOURCES:
                result.problems.append("%s sets a package source of its own; the nodes install from the site's sources "
                                       "(pytorch_index_url, pytorch_extra_index_urls, pytorch_find_links): remove the line" % where)
            else:
                plain = False  # a global option (--pre, --only-binary ...): pip reads it from the file
            continue
        requirement, separator, options = line.partition(" --")
        options = (separator.strip() + options) if options else ""
        if "://" in requirement or " @ " in requirement or requirement.startswith((".", "/", "~")) or "@" in requirement.split(";")[0]:
            result.problems.append("%s is a path or URL; name a package from the site's sources instead (and pin it with ==)" % where)
            continue
        spec, marker = (requirement.split(";", 1) + [""])[:2]
        match = NAME.match(spec.strip())
        if not match or (match.group(3) and not SPECIFIERS.match(match.group(3))):
            result.problems.append("%s is not a requirement pip understands (name[extras] and a version specifier such as ==1.2.3)"
                                   % where)
            continue
        name = match.group(1)
        if options:
            if any(not o.startswith("--hash=") for o in options.split()):
                result.problems.append("%s has options other than --hash; give them on lines of their own" % where)
                continue
            result.hashed = True
        else:
            unhashed.append(where)
        if marker.strip() or options:
            plain = False
        if name.lower() not in [n.lower() for n in result.names]:
            result.names.append(name)
        if not PIN.match(match.group(3) or ""):
            result.unpinned.append(name)
        if result.specifiers is not None:
            result.specifiers.append(re.sub(r"\s+", "", spec))
    if result.hashed:
        result.problems += ["%s has no --hash while other lines have one; pip then refuses the whole file: hash every line "
                            "(pip-compile --generate-hashes)" % where for where in unhashed]
    if not plain:
        result.specifiers = None
    return result


def read(project: str, name: str) -> tuple[str, Requirements | None]:
    """The file ``name`` of the project folder ``project`` and what it asks for; ("", None) when there is
    nothing to install (no project, no name, or no conventional file). FileNotFoundError for another
    name that is not a file; OSError or UnicodeDecodeError when it cannot be read."""
    if not project or not name:
        return "", None
    path = os.path.join(project, name)
    if not os.path.isfile(path):
        if name == CONVENTIONAL:
            return "", None
        raise FileNotFoundError(path)
    with open(path, encoding="utf-8") as handle:
        return path, parse(handle.read())
