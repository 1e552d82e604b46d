# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A file of root's written whole, and only when its content differs (job_start's run id, setup_plan's digests)."""

from __future__ import annotations

import os
import tempfile


def replace(path: str, content: str, mode: int, check: bool) -> bool:
    """Write ``content`` to ``path`` (root's, ``mode``) unless it holds it already; whether it changed
    (in check mode, whether it would). A link at ``path`` is never read or written through: it is replaced."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
            if handle.read() == content:
                return False
    except OSError:
        pass  # missing, a link or unreadable: written whole below
    if check:
        return True
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if os.geteuid() == 0:
                os.fchown(handle.fileno(), 0, 0)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return True
