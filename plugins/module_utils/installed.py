# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is installed on a node, as a launch compares it with what this run's settings would install.

node_probe reports each file's content hash, owner and mode (option files); the launcher renders the
same templates on the controller and compares (roles/launcher/tasks/installed.yml), so the comparison
costs no round trip of its own.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat


def _name(lookup, ident: int) -> str:
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def file_facts(paths: list[str]) -> dict[str, dict]:
    """Each path's sha1, owner, group and mode; exists is false for a missing file, a link or anything
    that is not a regular file (never followed: setup replaces it)."""
    found = {}
    for path in paths:
        try:  # O_NOFOLLOW: a link is reported, never read through (root reads what a job may have planted)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            found[path] = {"exists": False}
            continue
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            found[path] = {"exists": False}
            continue
        with os.fdopen(fd, "rb") as handle:
            digest = hashlib.sha1()  # noqa: S324 - what Ansible's copy and template compare (checksum), not a guard
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        found[path] = {"exists": True, "sha1": digest.hexdigest(), "owner": _name(pwd.getpwuid, info.st_uid),
                       "group": _name(grp.getgrgid, info.st_gid), "mode": "%04o" % stat.S_IMODE(info.st_mode)}
    return found
