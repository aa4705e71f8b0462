"""Go's ``text/tabwriter`` as istioctl configures it: minwidth 0, pad ' ', no flags.

Layer: L6. Imports: stdlib only.

Rules that show in istioctl's tables (istioctl.md §0.1):

* a row's cells are tab-terminated; the text after the last tab is not in any column and is
  never padded;
* column widths are computed per *column block* (consecutive rows that have that column), as
  the widest cell (in runes) plus ``padding``;
* an empty cell inside a column is still padded, so a row whose last cell is empty ends in
  spaces (``... STATIC     `` with an empty DESTINATION RULE).
"""

from __future__ import annotations

from collections.abc import Sequence


def render_table(rows: Sequence[Sequence[str]], *, padding: int) -> str:
    r"""Lay out rows as Go's tabwriter does, each row ending in a newline.

    Each row is a list of cells; the last one is the text after the last tab.

    Example:
        >>> rows = [["NAME", "TYPE"], ["agent", "STATIC"], ["x", ""]]
        >>> print(render_table(rows, padding=5), end="|")
        NAME      TYPE
        agent     STATIC
        x         
        |
    """
    lines = [list(r) for r in rows]
    out: list[str] = []
    _format(lines, 0, len(lines), [], padding, out)
    return "".join(out)


def _format(lines: list[list[str]], line0: int, line1: int, widths: list[int], padding: int,
            out: list[str]) -> None:
    # A port of tabwriter.(*Writer).format: find the column blocks of column len(widths).
    column = len(widths)
    this = line0
    while this < line1:
        line = lines[this]
        if column >= len(line) - 1:
            this += 1
            continue
        _write_lines(lines, line0, this, widths, out)
        line0 = this
        width = 0
        while this < line1:
            line = lines[this]
            if column >= len(line) - 1:
                break
            width = max(width, len(line[column]) + padding)
            this += 1
        widths.append(width)
        _format(lines, line0, this, widths, padding, out)
        widths.pop()
        line0 = this
    _write_lines(lines, line0, line1, widths, out)


def _write_lines(lines: list[list[str]], line0: int, line1: int, widths: list[int],
                 out: list[str]) -> None:
    for i in range(line0, line1):
        parts = []
        for j, cell in enumerate(lines[i]):
            parts.append(cell)
            if j < len(widths):
                parts.append(" " * (widths[j] - len(cell)))
        out.append("".join(parts) + "\n")
