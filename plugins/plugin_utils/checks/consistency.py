# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consistency: the settings every node of the group shares."""

from __future__ import annotations

from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import (
    CLUSTER_WIDE, CLUSTER_WIDE_PREFIXES, Cluster, PER_HOST, Problem, SECRETS, problem, shown,
)


def _cluster_wide(name: str) -> bool:
    return name not in PER_HOST and (name.startswith(CLUSTER_WIDE_PREFIXES) or name in CLUSTER_WIDE)


def consistency(c: Cluster) -> list[Problem]:
    """Every cluster-wide setting is the same on every node of the group, or each node that differs is named."""
    found = []
    first = c.master
    names = sorted({name for host in c.hosts for name in c.values[host] if _cluster_wide(name)})
    for name in names:
        want = c.get(first, name, _MISSING)
        for host in c.hosts[1:]:
            have = c.get(host, name, _MISSING)
            if have == want:
                continue
            if name in SECRETS:
                text = "%s differs from %s's (values not shown)" % (name, first)
            else:
                theirs = "(unset)" if have is _MISSING else shown(have)
                ours = "(unset)" if want is _MISSING else shown(want)
                text = "%s=%s differs from %s=%s on %s" % (name, theirs, name, ours, first)
            found.append(problem(host, name, text + "; a cluster-wide setting must be the same on every node of group "
                                                    "%s: set it for the group, not per host" % c.group))
    return found


_MISSING = object()
