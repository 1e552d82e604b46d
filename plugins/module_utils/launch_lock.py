# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job's launch lock on its master: a folder made at once or not at all, with a note of who holds it.

The module job_lock takes and gives it back; job_start gives it back in the same call as the start
once the master's ranks have joined (a launch that does not wait for the job's end).
"""

from __future__ import annotations

import json
import os
import shutil
import time

# Where the locks are kept (root's own, 0700); under /run, so a reboot frees every lock.
FOLDER = "/run/torchrun/locks"
NOTE = "holder.json"


def lock_path(job: str, folder: str = FOLDER) -> str:
    """The lock of ``job`` under ``folder``; ValueError for a name that is no job's (a path, empty, . or ..)."""
    if "/" in job or job in ("", ".", ".."):
        raise ValueError("job=%r is not a job name" % job)
    return os.path.join(folder, job)


def read_note(path: str) -> dict:
    try:
        with open(os.path.join(path, NOTE), encoding="utf-8") as handle:
            note = json.load(handle)
        return note if isinstance(note, dict) else {}
    except (OSError, ValueError):
        return {}


def take(path: str, token: str, owner: str, check: bool) -> tuple[bool, dict | None]:
    """(changed, holder): the lock taken (or already this run's), or the other run's note."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if check and not os.path.isdir(path):
        return True, None
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        note = read_note(path)
        if note.get("token") == token:
            return False, None
        return False, note or {"owner": "an unknown run", "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.stat(path).st_mtime))}
    note = {"token": token, "owner": owner, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid()}
    with open(os.path.join(path, NOTE + ".tmp"), "w", encoding="utf-8") as handle:
        json.dump(note, handle)
    os.replace(os.path.join(path, NOTE + ".tmp"), os.path.join(path, NOTE))
    return True, None


def shown(holder: dict) -> dict:
    """A holder's note without its token (what a refusal shows)."""
    return {key: value for key, value in holder.items() if key != "token"}


def busy_message(job: str, holder: dict, path: str) -> str:
    """The refusal of a launch while another run holds ``job``'s lock at ``path``."""
    note = shown(holder)
    who, since = note.get("owner") or "another run", note.get("since", "?")
    return ("job %s is being launched by %s since %s; two launches of one job at once would trample each other: "
            "wait for it to end, or, if that run is gone, remove %s on this node" % (job, who, since, path))


def give_back(path: str, token: str, check: bool) -> bool:
    if not os.path.isdir(path) or read_note(path).get("token") != token:
        return False
    if not check:
        shutil.rmtree(path)
    return True
