# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAME=value files as /etc/environment, /etc/default/* and the jobs' environment files hold them."""

from __future__ import annotations

import re


def assignments(text: str) -> dict[str, str]:
    """NAME=value lines (optionally `export`ed, optionally quoted), as /etc/environment holds them."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            found[match.group(1)] = value
    return found
