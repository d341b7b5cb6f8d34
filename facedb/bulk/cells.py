"""CSV files a person opens in a spreadsheet: no cell of ours runs as a formula there.

OWASP's rule for CSV injection: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return is read as a formula by Excel, LibreOffice and Google Sheets
(``=HYPERLINK(...)`` sends the sheet's contents away). Such a cell is written with a
leading apostrophe, which the spreadsheet shows as text and hides.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Return a cell's value, a text that a spreadsheet would run as a formula defused."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """A ``csv.DictWriter`` whose every cell goes through ``safe_cell``."""

    def __init__(self, handle: IO[str], fieldnames: Iterable[str]) -> None:
        self._writer = csv.DictWriter(handle, fieldnames=list(fieldnames))

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({k: safe_cell(v) for k, v in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)
