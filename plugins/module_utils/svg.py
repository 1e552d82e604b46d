# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A nodes x nodes heatmap as SVG text: the pictures of the health check and the connectivity check.

SVG is text, so the controller needs nothing new to write one, and every browser shows it. Each cell
and label carries a class (``cell``, ``slow``, ``failed``, ``label``, ``marked``) and each marked node
an outline around its row and its column, so a slow node is visible at a glance and a test can read it.
"""

from __future__ import annotations

from typing import Callable, Optional
from xml.sax.saxutils import escape, quoteattr

CELL = 40
FONT = 12
# Cells get their text written in them up to this many nodes; above it the text is the cell's tooltip.
TEXT_UP_TO = 16


def shade(ratio: float) -> str:
    """Red (0) through amber (0.5) to green (1), as #rrggbb."""
    ratio = min(max(ratio, 0.0), 1.0)
    if ratio < 0.5:
        red, green = 220, int(60 + 300 * ratio)
    else:
        red, green = int(220 - 360 * (ratio - 0.5)), 190
    return "#%02x%02x%02x" % (max(red, 40), min(green, 210), 70)


GREY = "#d9d9d9"
RED = "#d73027"
GREEN = "#4daf4a"

# A cell: (fill colour, text in the cell, extra classes, tooltip); None for no cell (the diagonal).
Cell = Optional[tuple]


def heatmap(title: str, nodes: list[str], cell: Callable[[str, str], Cell], marked: tuple = (), notes: tuple = ()) -> str:
    """The SVG document: ``title`` and ``notes`` (lines) above a grid of ``cell(row, column)``, marked nodes outlined."""
    nodes = [str(n) for n in nodes]
    label = max([len(n) for n in nodes] + [4]) * 7 + 16
    top = 30 + 16 * (len(notes) + 1) + label
    longest = max([len(title) * 9] + [len(str(line)) * 7 for line in notes])  # about the text's width at its size
    width, height = max(label + CELL * len(nodes) + 20, longest + 20), top + CELL * len(nodes) + 20
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" '
           'font-size="%d">' % (width, height, width, height, FONT),
           "<title>%s</title>" % escape(title),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="22" font-size="15" font-weight="bold">%s</text>' % escape(title)]
    for i, line in enumerate(notes):
        out.append('<text class="note" x="10" y="%d">%s</text>' % (44 + 16 * i, escape(str(line))))
    for i, node in enumerate(nodes):
        mark = node in marked
        colour = ' fill="%s" font-weight="bold"' % RED if mark else ""
        classes = quoteattr("label" + (" marked" if mark else ""))
        x, y = label + CELL * i + CELL // 2, top + CELL * i + CELL // 2 + FONT // 3
        out.append('<text class=%s data-node=%s data-axis="row" x="%d" y="%d" text-anchor="end"%s>%s</text>'
                   % (classes, quoteattr(node), label - 6, y, colour, escape(node)))
        out.append('<text class=%s data-node=%s data-axis="column" transform="translate(%d,%d) rotate(-60)"%s>%s</text>'
                   % (classes, quoteattr(node), x, top - 6, colour, escape(node)))
    for r, row in enumerate(nodes):
        for c, column in enumerate(nodes):
            found = cell(row, column)
            x, y = label + CELL * c, top + CELL * r
            if found is None:
                out.append('<rect class="diagonal" x="%d" y="%d" width="%d" height="%d" fill="%s"/>' % (x, y, CELL, CELL, "#f4f4f4"))
                continue
            fill, text, extra, tip = found
            classes = quoteattr(" ".join(["cell"] + list(extra)))
            out.append('<g class=%s data-row=%s data-column=%s><title>%s</title>' % (classes, quoteattr(row), quoteattr(column), escape(tip)))
            out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="white"/>' % (x, y, CELL, CELL, fill))
            if text and len(nodes) <= TEXT_UP_TO:
                out.append('<text x="%d" y="%d" text-anchor="middle" font-size="10">%s</text>'
                           % (x + CELL // 2, y + CELL // 2 + 4, escape(str(text))))
            out.append("</g>")
    for i, node in enumerate(nodes):
        if node in marked:
            span = CELL * len(nodes)
            out.append('<rect class="outline" data-node=%s data-axis="row" x="%d" y="%d" width="%d" height="%d" fill="none" '
                       'stroke="%s" stroke-width="3"/>' % (quoteattr(node), label, top + CELL * i, span, CELL, RED))
            out.append('<rect class="outline" data-node=%s data-axis="column" x="%d" y="%d" width="%d" height="%d" fill="none" '
                       'stroke="%s" stroke-width="3"/>' % (quoteattr(node), label + CELL * i, top, CELL, span, RED))
    out.append("</svg>")
    return "\n".join(out) + "\n"
