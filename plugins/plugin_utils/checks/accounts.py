# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Accounts: the job's user and uid on every node."""

from __future__ import annotations

from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import (
    Cluster, NOBODY, Problem, RESERVED_USERS, UID_MAX, USER_PATTERN, problem,
)


def accounts(c: Cluster) -> list[Problem]:
    """The job's user is the collection's own: never root, the login user, or any account it did not create."""
    found = []
    user = c.cluster("torchrun_user")
    if user is None or not USER_PATTERN.match(user):
        return found
    if user in RESERVED_USERS:
        found.append(problem(c.master, "torchrun_user", "torchrun_user=%s is a system account the collection must never take over; "
                                                        "leave the default (torchrun-<job>) or name a new account" % user))
        return found
    job = c.cluster("torchrun_job")
    for node in c.hosts:
        for other in (c.node_facts(node) or {}).get("jobs", []):
            if other.get("job") != job and other.get("user") == user:
                found.append(problem(node, "torchrun_user", "torchrun_user=%s is already the user of job %s on this node; each job "
                                                            "runs as its own user, so that jobs cannot read each other's environment, "
                                                            "secrets or checkpoints: leave the default (torchrun-<job>) or name a new "
                                                            "account" % (user, other["job"])))
        login = c.get(node, "ansible_user")
        if login == user:
            found.append(problem(node, "torchrun_user", "torchrun_user=%s is the account Ansible logs in with (ansible_user); the "
                                                        "collection would rewrite its shell, home and group: name a new account" % user))
            continue
        facts = c.node_facts(node)
        if facts is None:
            continue
        account = facts.get("account") or {}
        if account.get("exists") and not account.get("ours"):
            found.append(problem(node, "torchrun_user", "torchrun_user=%s is an existing account (uid %s, %s) that the collection did not "
                                                        "create; it would rewrite its shell, home and group: name a new account"
                                 % (user, account.get("uid"), account.get("home") or "no home")))
        elif not account.get("exists") and account.get("group_exists"):
            found.append(problem(node, "torchrun_user", "torchrun_user=%s: a group of that name already exists on the node and the "
                                                        "collection did not create it; name a new account" % user))
        elif account.get("exists") and account.get("uid") == 0:
            found.append(problem(node, "torchrun_user", "torchrun_user=%s has uid 0; a job never runs as root" % user))
        found += _uid(c, node, user, account)
    return found


def _uid(c: Cluster, node: str, user: str, account: dict) -> list[Problem]:
    """torchrun_uid: free on the node for the job's user and group, or theirs already."""
    uid = c.cluster("torchrun_uid")
    if not isinstance(uid, int) or not 0 < uid <= UID_MAX or uid == NOBODY:
        return []
    found = [problem(node, "torchrun_uid", "torchrun_uid=%d is already the %s of %s %s on this node; choose a number free on every "
                                           "node (getent passwd %d; getent group %d)" % (uid, kind, what, holder, uid, uid))
             for kind, what, holder in (("uid", "account", account.get("uid_holder")), ("gid", "group", account.get("gid_holder")))
             if holder]
    if found or not (account.get("exists") and account.get("ours")):
        return found
    wrong = ["%s %d" % (kind, have) for kind, have in (("uid", account.get("uid")), ("gid", account.get("gid"))) if have not in (None, uid)]
    if wrong:
        found.append(problem(node, "torchrun_uid", "torchrun_uid=%d, but an earlier setup created %s here with %s; the collection does "
                                                   "not renumber an account: set torchrun_uid=%d, or stop the job and remove the account "
                                                   "and its group (userdel %s) first" % (uid, user, " and ".join(wrong), account.get("uid"), user)))
    return found
