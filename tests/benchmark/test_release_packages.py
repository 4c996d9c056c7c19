"""Every tar stands alone: unpacked on its own, its SHA256SUMS verifies exactly its files with sha256sum and
`datasets.load_dataset` reads it through its card; the release's SHA256SUMS lists the tars."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from benchmark.releases.packaging import parse_sha256sums
from tests.benchmark.conftest import release_root

pytestmark = pytest.mark.django_db


def unpack(tar_path: Path, dest: Path) -> Path:
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")
    (folder,) = list(dest.iterdir())
    return folder


def verify_alone(folder: Path) -> dict[str, str]:
    """sha256sum -c passes, and the list names exactly the files that are there (nothing missing, nothing extra)."""
    result = subprocess.run(
        ["sha256sum", "--strict", "--quiet", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    sums = parse_sha256sums((folder / "SHA256SUMS").read_text())
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(sums) == present - {"SHA256SUMS"}
    return sums


def test_each_split_tar_verifies_and_loads_alone(release, settings, tmp_path):
    datasets = pytest.importorskip("datasets")
    root = release_root(settings, release)
    splits = {"train": "train", "dev": "validation", "test": "test"}
    for split, hf_split in splits.items():
        folder = unpack(root / f"packages/openphone-v1-{split}.tar", tmp_path / split)
        assert folder.name == f"openphone-v1-{split}"
        sums = verify_alone(folder)
        others = [f"kaldi/{other}/" for other in splits if other != split]
        assert f"kaldi/{split}/text" in sums and not any(p.startswith(tuple(others)) for p in sums)
        cache = str(tmp_path / "hf-cache" / split)
        # The folder itself, as a researcher points load_dataset at it: its card names only this split.
        data = datasets.load_dataset(str(folder), cache_dir=cache)
        assert list(data) == [hf_split]
        assert len(data[hf_split]) == release.facts["splits"][split]["clips"]
        assert list(datasets.load_dataset(str(folder / "hf"), cache_dir=cache)) == [hf_split]


def test_the_whole_tar_verifies_and_loads_and_the_release_lists_the_tars(release, settings, tmp_path):
    datasets = pytest.importorskip("datasets")
    root = release_root(settings, release)
    folder = unpack(root / "packages/openphone-v1.tar", tmp_path / "all")
    sums = verify_alone(folder)
    assert not any(p.startswith("packages/") for p in sums)
    data = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    assert set(data) == {"train", "validation", "test"}

    # The release's own list: every file beside it, the tars too, in sha256sum's format.
    published = parse_sha256sums((root / "SHA256SUMS").read_text())
    tars = {p.relative_to(root).as_posix() for p in (root / "packages").glob("*.tar")}
    assert tars == {f"packages/openphone-v1{s}.tar" for s in ("", "-train", "-dev", "-test")}
    assert tars <= set(published)
    result = subprocess.run(
        ["sha256sum", "--strict", "--quiet", "-c", "SHA256SUMS"], cwd=root, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_a_damaged_member_fails_the_tar_s_own_check(release, settings, tmp_path):
    folder = unpack(release_root(settings, release) / "packages/openphone-v1-test.tar", tmp_path / "t")
    (folder / "kaldi" / "test" / "text").write_text("changed\n")
    result = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert result.returncode != 0 and "kaldi/test/text: FAILED" in result.stdout
