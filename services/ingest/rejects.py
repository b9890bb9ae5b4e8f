"""The rejects file: every line an import could not load, with where and why.

Written as CSV (file, line, reason, content) into the destination folder, so
an operator can open it in a spreadsheet next to the release.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

MAX_CONTENT = 500


class Rejects:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._handle = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(["file", "line", "reason", "content"])
        self.by_file: Counter = Counter()

    def add(self, file_name: str, line_no: int, reason: str, content: str) -> None:
        self.by_file[file_name] += 1
        self._writer.writerow([file_name, line_no, reason, content[:MAX_CONTENT].rstrip()])

    @property
    def total(self) -> int:
        return sum(self.by_file.values())

    def close(self) -> None:
        self._handle.close()
