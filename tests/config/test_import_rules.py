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
    write(tmp_path, "training/ml/data.py", "from speech.phones import X\nfrom benchmark.exports import Y\n")
    write(tmp_path, "benchmark/exports.py", "from benchmark import tasks\n")
    write(tmp_path, "benchmark/tasks.py", "from benchmark.exports import write\n\ndef later():\n    import core.x\n")
    write(tmp_path, "core/x.py", "from benchmark import tasks\n")  # only a function-level import points back here

    problems = check_imports.check(tmp_path)

    assert sorted(problems) == sorted(
        [
            "speech/phones.py:1: speech imports django",
            "speech/text.py:1: speech imports contributors.models.Clip (it may import speech)",
            "training/ml/data.py:2: training.ml imports benchmark.exports.Y (it may import speech, training.ml)",
            "import cycle: benchmark.exports -> benchmark.tasks",
        ]
    )
