"""Go's text/tabwriter as istioctl sets it up (minwidth 0, tabwidth 8, pad ' ', no
flags): every cell but a line's last is padded to its column's widest cell plus PADDING,
so the tables line up exactly as `istioctl proxy-config` prints them."""

from __future__ import annotations

from collections.abc import Sequence


def render(rows: Sequence[Sequence[str]], padding: int) -> str:
    """ROWS (the header first) as aligned text, one line each, ending with a newline.

    As tabwriter.go's format(): a column's width counts the cells that end with a tab
    (all but a line's last), so the last column is never padded."""
    widths: dict[int, int] = {}
    for row in rows:
        for j, cell in enumerate(row[:-1]):
            widths[j] = max(widths.get(j, 0), len(cell) + padding)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[j]) for j, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "".join(line + "\n" for line in lines)
