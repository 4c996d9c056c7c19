#!/usr/bin/env python
"""The coverage floor, a ratchet (issue #15): run after the suite measured coverage (``make test COVERAGE=1``).

1. Prints the total of the data in ``.coverage``: lines, branches, and coverage.py's combined figure (lines and
   branches counted together), which is what ``fail_under`` in pyproject.toml's ``[tool.coverage.report]`` bounds.
2. Fails when that total is below the floor.
3. Fails when the floor is lower than the highest one ever committed (every commit of pyproject.toml that changed
   ``fail_under``): the floor only rises. Checking only the previous commit would let a lowering pass once another
   commit lands on top of it. A shallow clone checks what history it has, and says so.
4. Suggests raising the floor when the total is more than a point above it.

    python scripts/coverage_floor.py [--data-file .coverage]

Exit status: 0 when the floor holds, 1 when it does not, 2 when there is no coverage data.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = "pyproject.toml"
# How far the total may run ahead of the floor before the script suggests raising it (percentage points).
SLACK = 1.0


@dataclass(frozen=True)
class Totals:
    lines: int
    covered_lines: int
    branches: int
    covered_branches: int
    precision: int = 1

    @staticmethod
    def percent(covered: int, total: int) -> float:
        return 100.0 * covered / total if total else 100.0

    @property
    def line_percent(self) -> float:
        return self.percent(self.covered_lines, self.lines)

    @property
    def branch_percent(self) -> float:
        return self.percent(self.covered_branches, self.branches)

    @property
    def total_percent(self) -> float:
        """coverage.py's total: lines and branches counted together, as ``fail_under`` compares."""
        return self.percent(self.covered_lines + self.covered_branches, self.lines + self.branches)

    def describe(self) -> str:
        p = self.precision
        return (
            f"coverage: {self.line_percent:.{p}f}% of lines ({self.covered_lines}/{self.lines}), "
            f"{self.branch_percent:.{p}f}% of branches ({self.covered_branches}/{self.branches}), "
            f"total {self.total_percent:.{p}f}%"
        )


def totals_from_json(report: dict, precision: int = 1) -> Totals:
    """The totals of coverage.py's JSON report (``coverage json``)."""
    totals = report["totals"]
    return Totals(
        lines=totals["num_statements"],
        covered_lines=totals["covered_lines"],
        branches=totals.get("num_branches", 0),
        covered_branches=totals.get("covered_branches", 0),
        precision=precision,
    )


def floor_of(pyproject_text: str) -> float | None:
    """``fail_under`` of ``[tool.coverage.report]``, or None where the file sets none."""
    report = tomllib.loads(pyproject_text).get("tool", {}).get("coverage", {}).get("report", {})
    value = report.get("fail_under")
    return None if value is None else float(value)


def below_floor(total: float, floor: float, precision: int) -> bool:
    """coverage.py's own rule (``coverage report --fail-under``): the total rounded to the report's precision, and
    100 means every line and branch."""
    if floor >= 100.0:
        return total < 100.0
    return round(total, precision) < floor


def check(
    totals: Totals, floor: float | None, committed_floors: list[float], slack: float = SLACK
) -> tuple[bool, list[str]]:
    """Whether the floor holds, with the lines to print. ``committed_floors``: every value ``fail_under`` had in
    the history that could be read (empty where none could)."""
    p = totals.precision
    lines = [totals.describe()]
    if floor is None:
        return False, [*lines, f"FAIL: {PYPROJECT} sets no [tool.coverage.report] fail_under"]
    ok = True
    highest = max(committed_floors, default=None)
    if highest is not None and floor < highest:
        ok = False
        lines.append(
            f"FAIL: the floor is {floor:.{p}f}, below the {highest:.{p}f} committed before: the floor only rises "
            f"(restore fail_under = {highest:.{p}f} in {PYPROJECT})"
        )
    if below_floor(totals.total_percent, floor, p):
        ok = False
        lines.append(f"FAIL: total {totals.total_percent:.{p}f}% is below the floor of {floor:.{p}f}%")
    else:
        lines.append(f"the total clears the floor of {floor:.{p}f}%")
        suggestion = suggested_floor(totals.total_percent, floor, slack) if ok else None  # a lowered floor: restore it
        if suggestion is not None:
            lines.append(
                f"the total is more than {slack:g} point above the floor: raise fail_under to {suggestion:g} in "
                f"{PYPROJECT}"
            )
    return ok, lines


def suggested_floor(total: float, floor: float, slack: float = SLACK) -> float | None:
    """The floor to commit when the total has run more than ``slack`` points ahead of it: the total rounded down to
    a whole point, which leaves the run-to-run wobble (tests that skip without a service, timing-dependent retries)
    under a point of room. None while the floor is close enough."""
    if total - floor <= slack:
        return None
    return float(math.floor(total))


def git(root: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:  # no git on this machine: as outside a checkout
        return subprocess.CompletedProcess(["git", *args], returncode=127, stdout="", stderr="git not found")


def committed_floors(root: Path) -> tuple[list[float], str | None]:
    """Every value ``fail_under`` had in a commit that changed it, with a note when the history is missing or
    partial (not a git checkout, a shallow clone)."""
    if git(root, "rev-parse", "--verify", "-q", "HEAD").returncode != 0:
        return [], "no git history here: the floor is not compared with earlier commits"
    log = git(root, "log", "--format=%H", "-G", "fail_under", "--", PYPROJECT)
    floors = []
    for commit in log.stdout.split():
        shown = git(root, "show", f"{commit}:{PYPROJECT}")
        if shown.returncode != 0:  # the commit removed the file
            continue
        try:
            value = floor_of(shown.stdout)
        except tomllib.TOMLDecodeError:
            continue  # a broken pyproject.toml in history sets no floor to hold to
        if value is not None:
            floors.append(value)
    note = None
    if git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        note = "shallow clone: the floor is compared only with the commits fetched"
    return floors, note


def measured_totals(data_file: Path, config_file: Path, precision: int) -> Totals:
    """The totals of the data the suite left, through coverage.py's JSON report (its public API)."""
    import coverage

    cov = coverage.Coverage(data_file=str(data_file), config_file=str(config_file))
    cov.load()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "coverage.json"
        cov.json_report(outfile=str(out))
        return totals_from_json(json.loads(out.read_text()), precision)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-file", type=Path, default=ROOT / ".coverage")
    args = parser.parse_args(argv)
    if not args.data_file.exists():
        print(f"coverage floor: no data at {args.data_file} (run `make coverage` first)", file=sys.stderr)
        return 2
    pyproject = tomllib.loads((ROOT / PYPROJECT).read_text())
    precision = int(pyproject.get("tool", {}).get("coverage", {}).get("report", {}).get("precision", 1))
    totals = measured_totals(args.data_file, ROOT / PYPROJECT, precision)
    floors, note = committed_floors(ROOT)
    ok, lines = check(totals, floor_of((ROOT / PYPROJECT).read_text()), floors)
    if note:
        lines.append(note)
    for line in lines:
        print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
