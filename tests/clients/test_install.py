"""The researcher's tools install on their own: into a bare virtual environment, with neither Django nor PyTorch
nor anything of the server, and they run from there."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_clients_install_into_a_bare_environment_and_run_without_the_server(tmp_path):
    bare = tmp_path / "bare"
    venv.EnvBuilder(with_pip=True).create(bare)
    python = bare / "bin" / "python"
    # Built here into a wheel (the bare environment's old setuptools cannot build wheels), installed there offline;
    # requests (submit's only dependency, imported when a model is posted) is left out, so nothing is fetched.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "wheels",
         ROOT / "clients"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheels").glob("openphone_clients-*.whl")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]

    for script in ("openphone-download", "openphone-submit", "openphone-kaldi-paths"):
        shown = subprocess.run([bare / "bin" / script, "--help"], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "usage:" in shown.stdout, shown.stderr[-2000:]
    # What the tools import, in that environment: nothing of the platform, no Django, no PyTorch.
    probe = "import sys, openphone.download, openphone.submit, openphone.kaldi_paths; print(sorted(sys.modules))"
    loaded = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=True).stdout
    for package in ("django", "torch", "numpy", "benchmark", "contributors", "training", "core"):
        assert f"'{package}'" not in loaded, package
    # No server named: one sentence and a non-zero exit, from the installed script.
    refused = subprocess.run(
        [bare / "bin" / "openphone-download", "v1", tmp_path / "d"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin"},  # no $OPENPHONE_SERVER
    )  # fmt: skip
    assert refused.returncode == 1 and refused.stderr.startswith("error: no server given"), refused.stderr[-2000:]
