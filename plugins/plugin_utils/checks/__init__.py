# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight validator: every rule about the inventory and the nodes, one module per area.

The action plugin ``onprem.torchrun.validate`` builds a :class:`Cluster` from the play's hostvars
(each role's variables, with that role's own defaults where the inventory sets nothing: ``build``)
and, in the node stage, from what ``onprem.torchrun.node_probe`` read on each node. Each area
function returns every problem it finds as a :class:`Problem` naming the host, the variable, the
value and the fix; ``validate`` runs them in the order of ``AREAS`` (``settings``). The shared
parts (the collection's facts, ``Problem``, ``Cluster``, the path rules) are in ``core``. Nothing
here touches a node; the unit tests drive it with fake hostvars and node facts.
"""

from __future__ import annotations

from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.build import effective_values, load_roles, role_options, trusted
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, Problem, problem, shown
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.firewall import notes
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.play import whole_group
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.settings import AREAS, NOT_SETTINGS, PREFIXES, validate
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.stack_sources import script_found

__all__ = ["AREAS", "NOT_SETTINGS", "PREFIXES", "Cluster", "Problem", "effective_values", "load_roles", "notes", "problem",
           "role_options", "script_found", "shown", "trusted", "validate", "whole_group"]
