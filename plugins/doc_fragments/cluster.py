# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by the collection's plugins."""

from __future__ import annotations


class ModuleDocFragment:
    """The options of the filters that read every training node's variables, and the attributes of read-only modules."""

    # Filters applied to the training group's host list, reading each host's variables.
    DOCUMENTATION = r"""
options:
  _input:
    description: The hosts of the training group, in cluster order.
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) of the play.
    type: dict
    required: true
"""

    # Modules that only read the node.
    READ_ONLY = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the same data as a normal run.
    support: full
    details: Reads only, so it runs in check mode as well.
  diff_mode:
    description: Returns no diff; it changes nothing.
    support: none
"""
