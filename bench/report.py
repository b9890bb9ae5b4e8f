"""The table every benchmark ends with: one row per figure, with its target,
the original's way, each run, the best and the median, and the verdict."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def fixed(digits: int) -> Callable[[float], str]:
    """A figure shown with `digits` decimals."""
    return lambda value: f"{value:,.{digits}f}"


@dataclass
class Figure:
    """One row of the table: a value per run, judged on their median (or,
    with `judge_worst`, on the worst run) when there is a `check`."""

    name: str
    target: str
    original: str
    show: Callable[[float], str]
    check: Callable[[float], bool] | None = None
    higher_is_better: bool = False
    judge_worst: bool = False
    values: list[float] = field(default_factory=list)

    def cells(self, runs: int) -> list[str]:
        values = self.values + [math.nan] * (runs - len(self.values))
        shown = [self.show(value) if not math.isnan(value) else "-" for value in values]
        measured = [value for value in self.values if not math.isnan(value)]
        if not measured:
            return [self.name, self.target, self.original, *shown, "-", "-", "n/a"]
        best = max(measured) if self.higher_is_better else min(measured)
        worst = min(measured) if self.higher_is_better else max(measured)
        median = statistics.median(measured)
        if self.check is None:
            judged = "n/a"
        else:
            judged = verdict(self.check(worst if self.judge_worst else median))
        return [self.name, self.target, self.original, *shown,
                ("max " if self.higher_is_better else "") + self.show(best),
                self.show(median), judged]


def print_table(figures: list[Figure], runs: int) -> None:
    """The figures as a Markdown table, numbers right-aligned."""
    header = ["figure", "target", "original's way", *(f"run {run}" for run in
                                                      range(1, runs + 1)),
              "min", "median", "verdict"]
    rows = [figure.cells(runs) for figure in figures]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    numeric = [column >= 3 for column in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.rjust(width) if right else cell.ljust(width)
                                 for cell, width, right in zip(cells, widths, numeric,
                                                               strict=True)) + " |"
    print("\n" + line(header))
    print("|" + "|".join(("-" * (width + 1) + ":") if right else ("-" * (width + 2))
                         for width, right in zip(widths, numeric, strict=True)) + "|")
    for row in rows:
        print(line(row))
    print("min: the lowest of the runs, or the highest (\"max\") where higher is better; "
          "verdict: the median against the target (memory and errors: the worst run); "
          "n/a: no target at this size", flush=True)
