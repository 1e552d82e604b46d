# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A training project folder: which files belong to it and one hash of them all.

The controller hashes torchrun_project_dir (filter onprem.torchrun.project_hash) and every node
hashes its copy (module onprem.torchrun.node_probe, option project): the same function on both
sides, so a copy that differs in one byte, one file more or one file less is named before launch.
What is left out is torchrun_project_excludes (the contract role's defaults: the one list).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os


def excluded(relative: str, excludes) -> bool:
    """Whether any component of ``relative`` (a/b/c.py) matches an exclude pattern (fnmatch, as rsync's --exclude)."""
    return any(fnmatch.fnmatch(part, pattern) for part in relative.split("/") for pattern in excludes)


def project_files(root: str, excludes) -> list[str]:
    """The project's files, relative to ``root``, sorted. A link (to a file or a folder) counts as a
    file whose content is its target, as rsync -a copies it: it is not followed."""
    found = []
    for folder, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(folder, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        dirs[:] = sorted(d for d in dirs if d not in links and not excluded(rel_dir + d, excludes))
        found += [rel_dir + f for f in files + links if not excluded(rel_dir + f, excludes)]
    return sorted(found)


def project_hash(root: str, excludes) -> str:
    """sha256 over every file's relative path and content (a link: its target), in sorted order."""
    digest = hashlib.sha256()
    for relative in project_files(root, excludes):
        path = os.path.join(root, relative)
        digest.update(relative.encode() + b"\0")
        if os.path.islink(path):
            digest.update(b"link:" + os.readlink(path).encode())
        else:
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()
