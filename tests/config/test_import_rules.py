"""The house's import rules (scripts/check_imports.py): the speech layer at the bottom, training's PyTorch code on
it alone, no cycle among module-level imports; the check passes on this tree and names what breaks a rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_imports", ROOT / "scripts" / "check_imports.py")
check_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_imports)


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(root).parents:
        if parent != Path("."):
            (root / parent / "__init__.py").touch()
    path.write_text(text)


def test_this_tree_keeps_the_rules():
    assert check_imports.check(ROOT) == []


def test_each_broken_rule_is_named(tmp_path):
    write(tmp_path, "speech/phones.py", "import django\nfrom speech import text\n")
    write(tmp_path, "speech/text.py", "from contributors.models import Clip\n")
    write(tmp_path, "training/ml/data.py", "from speech.phones import X\nfrom benchmark.releases.exports import Y\n")
    write(tmp_path, "benchmark/releases/exports.py", "from benchmark import tasks\n")
    later = "\n\ndef later():\n    import contributors.x\n"
    write(tmp_path, "benchmark/tasks.py", "from benchmark.releases.exports import write" + later)
    # only a function-level import points back here:
    write(tmp_path, "contributors/x.py", "from benchmark import tasks\n")

    problems = check_imports.check(tmp_path)

    assert sorted(problems) == sorted(
        [
            "speech/phones.py:1: speech imports django",
            "speech/text.py:1: speech imports contributors.models.Clip (it may import speech)",
            "training/ml/data.py:2: training.ml imports benchmark.releases.exports.Y"
            " (it may import speech, training.ml)",
            "import cycle: benchmark.releases.exports -> benchmark.tasks",
        ]
    )


def test_arrows_pointing_up_the_house_are_named_even_inside_a_function(tmp_path):
    write(tmp_path, "benchmark/releases/services.py", "def done():\n    from benchmark.leaderboard import services\n")
    write(tmp_path, "benchmark/leaderboard/services.py", "from benchmark.releases import selectors\n")
    write(tmp_path, "benchmark/releases/selectors.py", "")
    write(tmp_path, "core/errors.py", "from contributors.models import Clip\n")
    write(tmp_path, "training/runs.py", "def seed():\n    import demo.seed\n")
    write(tmp_path, "demo/seed.py", "from training import runs\n")

    assert sorted(check_imports.check(tmp_path)) == [
        "benchmark/releases/services.py:2: benchmark.releases imports benchmark.leaderboard.services"
        " (an arrow pointing up the house)",
        "core/errors.py:1: core imports contributors.models.Clip (an arrow pointing up the house)",
        "training/runs.py:2: training imports demo.seed (an arrow pointing up the house)",
    ]
