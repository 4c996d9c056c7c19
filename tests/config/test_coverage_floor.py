"""The coverage ratchet (scripts/coverage_floor.py): the totals it prints are coverage.py's own, a total under the
floor fails by coverage.py's rounding rule, a floor below one committed before fails however many commits ago it was
lowered, and a total well above the floor asks for a higher one."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("coverage_floor", ROOT / "scripts" / "coverage_floor.py")
coverage_floor = importlib.util.module_from_spec(_spec)
sys.modules["coverage_floor"] = coverage_floor  # its dataclass looks its module up there
_spec.loader.exec_module(coverage_floor)
Totals = coverage_floor.Totals

PYPROJECT = """[project]
name = "x"

[tool.coverage.report]
fail_under = {floor}
precision = 1
"""

# Four of five lines run; one of the two ways out of the ``if``.
MODULE = """def pick(flag):
    if flag:
        return 1
    return 2
pick(True)
"""


def without_coverage_env() -> dict[str, str]:
    """The environment minus the suite's own coverage (a measured run hands its settings to subprocesses)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE")}


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    """A real coverage.py data file of MODULE, measured in a process of its own."""
    folder = tmp_path_factory.mktemp("measured")
    (folder / "mod.py").write_text(MODULE)
    (folder / ".coveragerc").write_text("[run]\nbranch = true\n")
    subprocess.run(
        [sys.executable, "-m", "coverage", "run", "--rcfile=.coveragerc", "mod.py"],
        cwd=folder, env=without_coverage_env(), check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return folder


def test_the_totals_are_coverage_pys(measured):
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", "--rcfile=.coveragerc", "-o", "report.json"],
        cwd=measured, env=without_coverage_env(), check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    report = json.loads((measured / "report.json").read_text())

    totals = coverage_floor.totals_from_json(report)

    assert (totals.covered_lines, totals.lines, totals.covered_branches, totals.branches) == (4, 5, 1, 2)
    assert totals.total_percent == pytest.approx(report["totals"]["percent_covered"])
    assert totals.describe() == "coverage: 80.0% of lines (4/5), 50.0% of branches (1/2), total 71.4%"


def test_the_script_reads_the_data_file_itself(measured):
    totals = coverage_floor.measured_totals(measured / ".coverage", measured / ".coveragerc", precision=1)

    assert totals.total_percent == pytest.approx(100 * 5 / 7)


def totals_at(percent: float) -> Totals:
    """Totals of 10,000 lines and no branches at ``percent``."""
    return Totals(lines=10_000, covered_lines=round(percent * 100), branches=0, covered_branches=0)


@pytest.mark.parametrize(
    ("percent", "floor", "holds"),
    [
        (70.0, 70, True),
        (69.96, 70, True),  # rounds to 70.0 at the report's precision, as `coverage report --fail-under` does
        (69.94, 70, False),
        (99.99, 100, False),  # 100 means every line
    ],
)
def test_a_total_below_the_floor_fails(percent, floor, holds):
    ok, lines = coverage_floor.check(totals_at(percent), floor, committed_floors=[])

    assert ok is holds
    assert any(line.startswith("FAIL: total") for line in lines) is not holds


def test_a_floor_below_one_committed_before_fails_even_when_the_total_clears_it():
    ok, lines = coverage_floor.check(totals_at(80.0), 60.0, committed_floors=[55.0, 65.0, 60.0])

    assert not ok
    assert "FAIL: the floor is 60.0, below the 65.0 committed before" in lines[1]
    assert not any("raise fail_under" in line for line in lines)  # restoring it comes first


def test_a_floor_at_or_above_every_committed_one_holds():
    ok, lines = coverage_floor.check(totals_at(65.5), 65.0, committed_floors=[55.0, 65.0])

    assert ok
    assert lines[1:] == ["the total clears the floor of 65.0%"]


def test_a_total_more_than_a_point_above_the_floor_asks_for_a_higher_floor():
    assert coverage_floor.suggested_floor(72.4, 71.0) == 72.0
    assert coverage_floor.suggested_floor(71.9, 71.0) is None
    ok, lines = coverage_floor.check(totals_at(73.5), 71.0, committed_floors=[71.0])
    assert ok
    assert lines[-1].endswith("raise fail_under to 73 in pyproject.toml")


def test_no_floor_set_fails():
    ok, lines = coverage_floor.check(totals_at(90.0), coverage_floor.floor_of('[project]\nname = "x"\n'), [])

    assert not ok
    assert lines[-1] == "FAIL: pyproject.toml sets no [tool.coverage.report] fail_under"


def git(cwd: Path, *args: str) -> str:
    env = {**without_coverage_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def commit_floor(repo: Path, floor: float | None, message: str) -> None:
    text = PYPROJECT.format(floor=floor) if floor is not None else '[project]\nname = "x"\n'
    (repo / "pyproject.toml").write_text(text)
    git(repo, "add", "pyproject.toml")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def test_the_floors_of_every_commit_that_changed_one_are_read(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commit_floor(repo, None, "no floor yet")
    commit_floor(repo, 50, "a floor")
    commit_floor(repo, 60, "raised")
    commit_floor(repo, 55, "lowered")
    (repo / "other.txt").write_text("x")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "on top of the lowering")

    floors, note = coverage_floor.committed_floors(repo)

    assert sorted(floors) == [50.0, 55.0, 60.0]
    assert note is None
    current = coverage_floor.floor_of((repo / "pyproject.toml").read_text())
    ok, _ = coverage_floor.check(totals_at(90.0), current, floors)
    assert not ok  # lowered two commits back, and still refused

    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "2", f"file://{repo}", str(shallow))
    floors, note = coverage_floor.committed_floors(shallow)
    assert floors == [55.0]
    assert note == "shallow clone: the floor is compared only with the commits fetched"


def test_outside_git_the_floor_is_not_compared(tmp_path):
    floors, note = coverage_floor.committed_floors(tmp_path)

    assert floors == []
    assert note.startswith("no git history here")
