"""A progress display for the terminal: one line redrawn in place on a
terminal, a line per phase and per tenth elsewhere (logs, CI)."""

from __future__ import annotations

import sys
import time

WIDTH = 30


def _amount(value: int | None, phase: str) -> str:
    if value is None:
        return "?"
    if phase.startswith(("download", "unpack", "load")):
        return f"{value / 1e6:,.1f} MB"
    return f"{value:,}"


class ProgressLine:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.phase = None
        self.tenth = -1
        self.started = time.monotonic()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        share = done / total if total else None
        if self.interactive:
            if phase != self.phase and self.phase is not None:
                self.stream.write("\n")
            filled = int(WIDTH * share) if share is not None else 0
            bar = "#" * filled + "-" * (WIDTH - filled)
            percent = f"{share:4.0%}" if share is not None else "    "
            self.stream.write(f"\r{phase:<22} [{bar}] {percent} {_amount(done, phase)}"
                              f" of {_amount(total, phase)}   ")
            self.stream.flush()
        else:
            tenth = int(share * 10) if share is not None else 0
            if phase != self.phase or tenth > self.tenth:
                self.stream.write(f"{phase}: {_amount(done, phase)} of "
                                  f"{_amount(total, phase)}\n")
                self.tenth = tenth
        if phase != self.phase:
            self.tenth = -1 if self.interactive else self.tenth
        self.phase = phase

    def finish(self) -> None:
        if self.interactive and self.phase is not None:
            self.stream.write("\n")
        self.stream.write(f"done in {time.monotonic() - self.started:.1f}s\n")
