#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make, clear or remove a job's folders as the job's own user."""

from __future__ import annotations

DOCUMENTATION = r"""
module: job_folder
author: onprem.torchrun developers (@onprem)
version_added: 0.2.0
short_description: Make, clear or remove a job's folders as the job's own user, never as root
description:
  - Runs as root and does the work in a child process that has become O(user) (its uid, its group and
    its supplementary groups) before it touches anything, so every file is made, read and removed
    with exactly the job's rights. On NFS with C(root_squash) root is C(nobody) and cannot do this; and
    root never follows a link the job planted in what it can write.
  - C(state=directory) makes each of O(paths), in order, as folders of O(user) with O(mode) (the
    mode of one that exists is set). C(state=cleared) removes everything inside each of O(paths)
    but the names in O(keep), and keeps the folder. C(state=absent) removes each of O(paths) whole.
  - A path that is a link, or a file where a folder should be, is refused, naming it. A folder the
    user cannot write in is refused with the reason the system gave.
  - Needs no become to an unprivileged user (C(su) from a login that is not root asks for the job's
    password, which it does not have); it needs root, as every task of the collection does.
options:
  paths:
    description: The folders, absolute paths.
    type: list
    elements: path
    required: true
  user:
    description: The job's user (torchrun_user); it must exist.
    type: str
    required: true
  state:
    description: What to make of the folders.
    type: str
    choices: [directory, cleared, absent]
    default: directory
  mode:
    description: The mode of the folders (C(state=directory)).
    type: str
    default: "0750"
  keep:
    description: Names inside a folder that C(state=cleared) leaves (the checkpoints).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Can run in check mode.
    support: full
    details: In check mode the child reads, as the user, what would be made or removed, and changes nothing.
  diff_mode:
    description: Returns the folders and entries that would come or go.
    support: full
"""

EXAMPLES = r"""
- name: Give the job its folder and checkpoints folder on the shared storage, as the job's user
  onprem.torchrun.job_folder:
    paths: [/mnt/nfs/train, /mnt/nfs/train/checkpoints]
    user: torchrun-train
  run_once: true

- name: Remove what the job wrote on the shared storage but its checkpoints
  onprem.torchrun.job_folder:
    paths: [/mnt/nfs/train]
    user: torchrun-train
    state: cleared
    keep: [checkpoints]
"""

RETURN = r"""
made:
  description: The folders made (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
removed:
  description: The paths removed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
moded:
  description: The folders whose mode was set.
  returned: always
  type: list
  elements: str
"""

import json
import os
import pwd
import shutil
import stat
import traceback

from ansible.module_utils.basic import AnsibleModule


class Refused(Exception):
    """A path this module will not work on, with the reason."""


def become(entry: pwd.struct_passwd) -> None:
    """Drop every right of root for the user's own: groups first, then the gid, then the uid."""
    os.setgroups(os.getgrouplist(entry.pw_name, entry.pw_gid))
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)


def kind(path: str) -> str | None:
    """'dir', 'link', 'other' or None (missing), never following a link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return "dir" if stat.S_ISDIR(mode) else "link" if stat.S_ISLNK(mode) else "other"


def remove(path: str) -> None:
    """Remove a path without following links in it (rmtree removes a link, not what it points to)."""
    if kind(path) == "dir":
        shutil.rmtree(path)
    else:
        os.unlink(path)


def work(paths: list[str], state: str, mode: int, keep: list[str], check: bool) -> dict:
    """What the user does (see DOCUMENTATION); runs as the user."""
    made, removed, moded = [], [], []
    for path in paths:
        found = kind(path)
        if found in ("link", "other"):
            raise Refused("%s is a %s, not a folder; the job's folders are never links: remove it and run again"
                          % (path, "link" if found == "link" else "file"))
        if state == "directory":
            if found is None:
                made.append(path)
                if not check:
                    os.mkdir(path, mode)
                    os.chmod(path, mode)  # the umask took bits off
            elif stat.S_IMODE(os.lstat(path).st_mode) != mode:
                moded.append(path)
                if not check:
                    os.chmod(path, mode)
        elif state == "absent" and found is not None:
            removed.append(path)
            if not check:
                remove(path)
        elif state == "cleared" and found is not None:
            for name in sorted(os.listdir(path)):
                if name not in keep:
                    removed.append(os.path.join(path, name))
                    if not check:
                        remove(os.path.join(path, name))
    return {"made": made, "removed": removed, "moded": moded}


def as_user(entry: pwd.struct_passwd, job) -> dict:
    """Run ``job()`` in a child that has become the user; its result, or its refusal as {'error': ...}."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the module
        os.close(read)
        try:
            become(entry)
            answer = {"result": job()}
        except Refused as err:
            answer = {"error": str(err)}
        except OSError as err:
            answer = {"error": "%s: %s" % (getattr(err, "filename", None) or "", err.strerror or err)}
        except Exception:  # pylint: disable=broad-except  # reported to the parent, which fails the task
            answer = {"error": traceback.format_exc()}
        with os.fdopen(write, "w", encoding="utf-8") as handle:
            json.dump(answer, handle)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as handle:
        text = handle.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"error": "the child that became %s ended without an answer" % entry.pw_name}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "required": True},
            "user": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["directory", "cleared", "absent"], "default": "directory"},
            "mode": {"type": "str", "default": "0750"},
            "keep": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    paths = params["paths"]
    bad = [p for p in paths if not os.path.isabs(p) or os.path.normpath(p) in ("/", "//")]
    if bad:
        module.fail_json(msg="paths must be absolute folders, not %s" % ", ".join(bad))
    try:
        mode = int(params["mode"], 8)
    except ValueError:
        module.fail_json(msg="mode=%s is not an octal mode such as 0750" % params["mode"])
    try:
        entry = pwd.getpwnam(params["user"])
    except KeyError:
        module.fail_json(msg="user %s does not exist on this node; set the job up first (setup.yml)" % params["user"])
    if os.geteuid() != 0:
        module.fail_json(msg="job_folder runs as root (become: true) and works as %s" % params["user"])
    answer = as_user(entry, lambda: work([os.path.normpath(p) for p in paths], params["state"], mode, params["keep"], module.check_mode))
    if "error" in answer:
        module.fail_json(msg="as %s: %s" % (params["user"], answer["error"]))
    result = answer["result"]
    changed = bool(result["made"] or result["removed"] or result["moded"])
    diff = {"before": "".join("%s\n" % p for p in result["removed"]) + "".join("%s mode\n" % p for p in result["moded"]),
            "after": "".join("%s/\n" % p for p in result["made"]) + "".join("%s mode %s\n" % (p, params["mode"]) for p in result["moded"])}
    module.exit_json(changed=changed, diff=diff, **result)


if __name__ == "__main__":
    main()
