"""release_build: the frozen manifest, stable speaker-disjoint splits, privacy, checksums, packages, the task."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from benchmark.models import Release, ReleaseFile, SpeakerSplit
from benchmark.releases.packaging import file_sha256, parse_sha256sums
from benchmark.releases.selectors import release_hidden_entries
from benchmark.releases.services import release_create
from benchmark.tasks import release_build as release_build_task
from contributors.models import Clip, ClipStatus
from tests.benchmark.conftest import build, make_corpus, release_root

pytestmark = pytest.mark.django_db


def manifest(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def test_release_freezes_valid_clips_into_speaker_disjoint_splits_with_a_private_hidden_split(release, settings):
    root = release_root(settings, release)
    rows = manifest(root)
    hidden = release_hidden_entries(release=release)
    assert release.status == "ready" and release.clip_count == Clip.objects.filter(status=ClipStatus.VALID).count()
    assert len(rows) + len(hidden) == release.clip_count
    assert {r["split"] for r in rows} <= {"train", "dev", "test"} and hidden
    splits_of = defaultdict(set)
    for r in rows:
        splits_of[r["speaker_id"]].add(r["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    assert not {e.speaker_id for e in hidden} & set(splits_of)
    # The hidden split lives only under private/, with no ReleaseFile row and no place in any public file.
    hidden_ids = {e.utt_id for e in hidden}
    assert (Path(settings.MEDIA_ROOT) / release.private_prefix / hidden[0].audio).is_file()
    assert not ReleaseFile.objects.filter(path__contains="hidden/").exists()
    public_text = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file() and p.suffix not in (".WAV", ".flac"))
    assert not any(utt.encode() in public_text for utt in hidden_ids)
    # Word and canonical phone transcriptions per clip.
    first = rows[0]
    assert first["words"] and len(first["phones"]) == len(first["words"]) and first["sample_rate"] == 16000


def test_demographics_of_small_groups_are_withheld_and_facts_reported(release, settings):
    rows = manifest(release_root(settings, release))
    assert "Rare Island" not in (release_root(settings, release) / "README.md").read_text()
    assert all(r["accent"] in ("US General", "") for r in rows)
    assert all(r["age_band"] != "18-29" for r in rows)  # 4 speakers in the corpus: under the minimum of 5
    facts = release.facts
    assert facts["withheld_speakers"]["accent"] == 1
    assert set(facts["splits"]) == {"train", "dev", "test", "hidden"}
    assert facts["coverage"]["train"]["phones"] > 20
    assert "train-test" in facts["sentence_overlap"]["shared_sentences"]
    assert facts["trust"]["MIN_TRUST"] == 0.6
    readme = (release_root(settings, release) / "README.md").read_text()
    for heading in ["## Contents", "## Phonetic coverage", "## Known limitations", "## How to cite", "CC0"]:
        assert heading in readme
    assert "## Phone and word times" in readme
    for plot in ["durations", "speakers", "phones"]:
        assert (release_root(settings, release) / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"


def test_checksums_verify_with_sha256sum_and_match_the_rows(release, settings):
    root = release_root(settings, release)
    sums = parse_sha256sums((root / "SHA256SUMS").read_text())
    # Every published file but the list itself, the tars included.
    assert "manifest.jsonl" in sums and "packages/openphone-v1.tar" in sums and "packages/openphone-v1-dev.tar" in sums
    assert set(sums) | {"SHA256SUMS"} == set(ReleaseFile.objects.filter(release=release).values_list("path", flat=True))
    result = subprocess.run(
        ["sha256sum", "--strict", "--quiet", "-c", "SHA256SUMS"], cwd=root, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ReleaseFile.objects.filter(release=release):
        assert row.size == (root / row.path).stat().st_size
    tar_row = ReleaseFile.objects.get(release=release, path="packages/openphone-v1.tar")
    assert tar_row.sha256 == file_sha256(root / tar_row.path)


def test_packages_hold_the_release_and_each_split(release, settings):
    root = release_root(settings, release)
    with tarfile.open(root / "packages/openphone-v1.tar") as tar:
        names = set(tar.getnames())
    assert "openphone-v1/SHA256SUMS" in names and "openphone-v1/manifest.jsonl" in names
    assert not any("/packages/" in n or "hidden" in n for n in names)
    # A split's tar unpacks into a folder of its own, so unpacking two of them side by side overwrites nothing.
    with tarfile.open(root / "packages/openphone-v1-dev.tar") as tar:
        dev = set(tar.getnames())
    assert {n.split("/", 1)[0] for n in dev} == {"openphone-v1-dev"}
    assert "openphone-v1-dev/kaldi/dev/text" in dev
    assert "openphone-v1-dev/hf/data/validation-00000-of-00001.parquet" in dev
    assert not any(n.startswith(("openphone-v1-dev/kaldi/test", "openphone-v1-dev/hf/data/train")) for n in dev)
    assert {"openphone-v1-dev/README.md", "openphone-v1-dev/SHA256SUMS", "openphone-v1-dev/LICENSE"} <= dev


def test_speakers_keep_their_split_and_a_deleted_contributor_is_absent_later(release, corpus, settings):
    first = dict(SpeakerSplit.objects.values_list("speaker_id", "split"))
    assert len(first) == len(corpus)
    # A public speaker: DELTA.json compares the public manifests only (the corpus is recorded on the platform now,
    # so 5 of its speakers are hidden and corpus[3] may be one of them).
    gone = next(c for c in corpus[3:] if first[c.speaker_id] != "hidden")
    gone.user.delete()
    newcomers = make_corpus(speakers=6, clips_each=1, seed=500_000)
    second = build("v2")
    rows = manifest(release_root(settings, second)) + [e.as_json() for e in release_hidden_entries(release=second)]
    speakers = {r["speaker_id"]: r["split"] for r in rows}
    assert gone.speaker_id not in speakers
    for speaker, split in speakers.items():
        if speaker in first:
            assert split == first[speaker]
    assert {c.speaker_id for c in newcomers} <= set(speakers)
    delta = json.loads((release_root(settings, second) / "DELTA.json").read_text())
    assert delta["previous"] == "v1" and delta["speakers_removed"] == 1 and len(delta["added"]) == 6
    assert all(a.startswith(tuple(c.speaker_id for c in newcomers)) for a in delta["added"])
    assert second.previous == release


def test_command_builds_and_refuses_duplicates_bad_versions_and_empty_corpora(corpus, capsys):
    call_command("release_build", "--version", "2025.1", "--limit", "20")
    assert "Release 2025.1 ready: 20 clips" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already exists"):
        call_command("release_build", "--version", "2025.1")
    with pytest.raises(CommandError, match="Version"):
        call_command("release_build", "--version", "../etc")
    Clip.objects.update(status=ClipStatus.PENDING)
    with pytest.raises(CommandError, match="no valid clips"):
        call_command("release_build", "--version", "2025.2")


def test_task_is_idempotent_and_a_failed_build_is_recorded_and_retried(corpus, settings, monkeypatch):
    release = release_create(version="t1")
    assert release_build_task(release.pk) == "ready"
    facts = Release.objects.get(pk=release.pk).facts
    assert release_build_task(release.pk) == "ready"  # a redelivery does nothing
    assert Release.objects.get(pk=release.pk).facts == facts

    from benchmark.releases import exports

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports, "write_kaldi", explode)  # the build writes Kaldi through it
    failing = release_create(version="t2")
    assert release_build_task(failing.pk) == "failed"
    failing.refresh_from_db()
    assert "disk full" in failing.error and not failing.files.exists()
    assert not (Path(settings.MEDIA_ROOT) / failing.storage_prefix).exists()
    monkeypatch.undo()
    again = release_create(version="t2")  # a failed version can be built again
    assert release_build_task(again.pk) == "ready"


def test_supplied_alignments_of_the_canonical_phones_are_used_and_others_realigned(corpus, settings, tmp_path):
    """A training run's alignments (``--alignments``) are taken where their phones are the clip's canonical ones;
    a clip whose supplied phones differ is aligned by the flat-start HMM like the rest."""
    clips = list(Clip.objects.filter(status=ClipStatus.VALID).select_related("prompt")[:2])
    phones = [p for word in clips[0].prompt.phones for p in word]
    supplied = [[0, 0.1, "sil"], *([0.1 + 0.05 * i, 0.15 + 0.05 * i, p] for i, p in enumerate(phones))]
    path = tmp_path / "align.jsonl"
    path.write_text(
        json.dumps({"sha256": clips[0].sha256, "phones": supplied})
        + "\n"
        + json.dumps({"sha256": clips[1].sha256, "phones": [[0, 0.1, "sil"], [0.1, 0.5, "DH"]]})
        + "\n"
    )
    release = build("a1", alignments=str(path))
    rows = manifest(release_root(settings, release)) + [e.as_json() for e in release_hidden_entries(release=release)]
    good, bad = (next(r for r in rows if r["sha256"] == c.sha256) for c in clips)
    expected = [[round(s * 16000), round(t * 16000), p] for s, t, p in supplied]
    expected[-1][1] = good["num_samples"]  # the last phone runs to the end of the file, as in TIMIT
    assert good["alignment"] == expected
    assert [p for _, _, p in bad["alignment"] if p != "sil"] == [p for w in bad["phones"] for p in w]
    public = [r for r in (good, bad) if r["split"] != "hidden"]
    assert release.facts["alignment"]["supplied"] == (good["split"] != "hidden")
    for row in public:
        phn = release_root(settings, release) / Path(row["audio"]).with_suffix(".PHN")
        labels = [line.split()[2] for line in phn.read_text().splitlines()]
        assert [p for p in labels if p not in ("h#", "pau")] == [p.lower() for w in row["phones"] for p in w]


def test_a_release_is_built_only_from_a_trust_state_a_full_recompute_reproduces(corpus, capsys):
    """If the stored statuses differ from a full recompute (a bug, or a hand edit), the build refuses and
    names the rows; after `trust_recompute` it builds."""
    clip = Clip.objects.filter(status=ClipStatus.VALID).first()
    Clip.objects.filter(pk=clip.pk).update(votes_counted=4)  # imported clips carry no votes

    release = release_create(version="v1")
    release_build_task(release.pk)
    release.refresh_from_db()

    assert release.status == "failed"
    assert "differs from a full recompute in 1 rows" in release.error and f"clip {clip.pk}" in release.error
    call_command("trust_recompute")
    assert build("v1").status == "ready"
