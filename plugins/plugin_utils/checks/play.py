# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The play: a run that leaves out nodes of the group."""

from __future__ import annotations

from typing import Iterable

from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, Problem, problem


def whole_group(c: Cluster, play_hosts: Iterable[str], partial_var: str = "") -> list[Problem]:
    """A job runs on every node of its group at once: a play narrowed with --limit would start part of
    the job (whose nodes then wait their whole join timeout for the rest), stop part of it (the others
    hang on their peers) or install another part's settings. ``partial_var`` names the setting that
    lets a play which may mean part of the group (setup, stop) say so; launch and the health check have none."""
    playing = set(play_hosts)
    missing = [host for host in c.hosts if host not in playing]
    if not c.hosts or not missing or (partial_var and c.cluster(partial_var) is True):
        return []
    them = "it" if len(missing) == 1 else "them"
    fix = "run without --limit, or take %s out of group %s" % (them, c.group)
    if partial_var:
        fix += ("; or, where part of the group is meant (one node's stack upgraded while the job is stopped, a stop that "
                "leaves out a node that is gone), say so with -e %s=true" % partial_var)
    return [problem(c.master, "--limit", "this play leaves out %s of group %s (--limit or a narrower host pattern); a job runs "
                                         "on every node of the group at once, and part of it started, stopped or changed leaves "
                                         "the others waiting their whole join timeout or hanging on their peers: %s"
                    % (", ".join(missing), c.group, fix))]
