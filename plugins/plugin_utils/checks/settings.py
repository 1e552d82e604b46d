# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Settings: every name with one of the collection's prefixes is one a role declares; the areas, in order."""

from __future__ import annotations

import difflib
from typing import Callable, Iterable

from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, Problem, problem
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.option_types import types
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.names import names_and_paths
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.consistency import consistency
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.port_rules import ports
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.address_rules import addresses
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.processes import processes
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.rendezvous import rendezvous
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.accounts import accounts
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.firewall import firewall, firewall_mode
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.stack_sources import stack_sources
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.driver import nvidia_driver
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.folders import declared_paths, fabric, shared_storage
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.trust import GROUP_PATTERN, inventory_names, ownership, trust
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.runtime import runtime
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.build import HOST_VARIABLES


# The prefixes of the collection's variables (tests/unit check it against roles/).
PREFIXES = ("torchrun_", "connectivity_", "firewall_", "healthcheck_", "job_", "launcher_", "nvidia_", "preflight_", "pytorch_",
            "stack_report_", "validate_")
# Settings renamed or removed in a release, with what replaced them (kept at least one release).
RENAMED = {"launcher_wait": "job_wait", "launcher_wait_timeout": "job_wait_timeout", "launcher_join_timeout": "job_join_timeout",
           "launcher_logs_dir": "job_logs_dir", "launcher_log_lines": "job_log_lines"}
REMOVED = {"healthcheck_port": "the health check uses the job's master port (torchrun_master_port) since 0.2.0"}
# Names with a prefix that are results the roles set (facts), or settings refused by another area.
NOT_SETTINGS = {"connectivity_matrix", "healthcheck_result", "stack_report_result", "nvidia_gpus", "nvidia_driver_version",
                "torchrun_node_rank"}


def unknown_settings(c: Cluster) -> list[Problem]:
    """A setting with one of the collection's prefixes that no role declares is a mistake (a typo, a
    knob renamed): it would be silently ignored. Named with its new name or the nearest known one."""
    if c.given is None:
        return []
    known = set(c.specs) | set(HOST_VARIABLES)
    unknown: dict[str, list[str]] = {}
    for host in c.hosts:
        for name in c.given.get(host, []):
            if name.startswith(PREFIXES) and name not in known and name not in NOT_SETTINGS:
                unknown.setdefault(name, []).append(host)
    found = []
    for name, hosts in sorted(unknown.items()):
        if name in RENAMED:
            fix = "it was renamed: use %s" % RENAMED[name]
        elif name in REMOVED:
            fix = "it was removed: %s; remove it" % REMOVED[name]
        else:
            near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            fix = "did you mean %s?" % near[0] if near else "see the roles' READMEs for the settings there are"
        where = c.master if len(hosts) == len(c.hosts) else hosts[0]
        found.append(problem(where, name, "%s is not a setting of the collection and would be ignored; %s" % (name, fix)))
    return found


AREAS: tuple[Callable[[Cluster], list[Problem]], ...] = (
    names_and_paths, consistency, ports, addresses, processes, rendezvous, accounts, firewall, stack_sources, nvidia_driver, declared_paths,
    shared_storage, fabric, trust, ownership, firewall_mode, runtime, unknown_settings,
)


def validate(c: Cluster, areas: Iterable[Callable[[Cluster], list[Problem]]] = AREAS) -> list[Problem]:
    """Every problem of the cluster: types first (the other areas see converted values), then each area."""
    if not GROUP_PATTERN.match(c.group):
        return inventory_names(c)
    if not c.hosts:
        return [Problem("inventory", "torchrun_group", "inventory: group '%s' (torchrun_group) is missing or empty; list the training "
                                                       "nodes in it, first the master node" % c.group)]
    found = types(c)
    for area in areas:
        found += area(c)
    unique = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique
