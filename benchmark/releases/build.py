"""What a release build writes: the valid clips frozen into a manifest and split by speaker, aligned, exported in
every format (TIMIT, Kaldi, Lhotse, Hugging Face), documented (datasheet, card, plots) and packaged, all into a
staging folder. Publishing it and the release row's life (claims, heartbeats, reaping) are in services.py."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import struct
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Count
from django.utils import timezone

from benchmark.conf import release_settings
from benchmark.models import Release, ReleaseStatus, SpeakerSplit
from benchmark.releases import exports
from benchmark.releases.datasheet import (
    hf_card_body,
    phone_map_tsv,
    release_facts,
    render_licence,
    render_readme,
    write_plots,
)
from benchmark.releases.exports import ReleaseEntry
from benchmark.releases.packaging import (
    FileWriter,
    bytes_sha256,
    files_sha256,
    files_under,
    sha256sums_text,
    write_tar,
)
from benchmark.releases.selectors import HmmSource, release_clips_valid, release_hmm_latest, release_public_entries
from contributors.demo_prompts import COVERAGE_PROMPTS, SHARED_PROMPTS
from contributors.models import PLATFORM_LICENCE, PLATFORM_SOURCE, Clip, Provenance, Verdict, Vote
from contributors.services.trust import trust_settled
from core.errors import ServiceError
from core.licences import UnknownLicence, licence_get
from speech.phones import INVENTORY, PHONES, SILENCE
from speech.splits import CHILD_AGE_BANDS, PUBLIC_SPLITS, SplitSpeaker, assign_splits, hidden_split_formed

if TYPE_CHECKING:  # training/ml (torch) is imported only when a build aligns
    from training.ml.release_align import Aligned

logger = logging.getLogger(__name__)


HMM_FILE = "acoustic/hmm.pt"  # the aligner's HMM, under the release's private prefix (never published)
# The build's check of its aligner: espeak-ng readings of the demo's prompts, which cover every phone.
ESPEAK_CHECK_SENTENCES = SHARED_PROMPTS + COVERAGE_PROMPTS[:16]

SAMPLE_RATE = exports.SAMPLE_RATE
PUBLISHED_DEMOGRAPHICS = ("gender", "age_band", "age_group", "accent", "first_language")
SUBMISSION_SPEC = Path(settings.BASE_DIR) / "docs" / "submission-spec.md"
# Threads for the build's byte-heavy steps (audio copies, checksums, tars) and the aligner's clips and batches: their
# work is in C code that releases the GIL (libsndfile, hashlib, file I/O, PyTorch and NumPy kernels), so threads use
# the cores without a process pool's copies. Beyond the cores they only contend for the disk. The aligner's results
# do not depend on the count (training.ml.threads.ordered_map).
BUILD_WORKERS = max(1, min(4, os.cpu_count() or 1))


def local_path(name: str) -> Path | None:
    """The stored file's path when storage is local (read and renamed in place), None on object storage."""
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        return None


class Built:
    def __init__(self) -> None:
        self.entries: list[ReleaseEntry] = []
        self.files: dict[str, tuple[str, str]] = {}  # relative path -> (format, split)
        self.sums: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        self.facts: dict = {}
        self.assignment: dict[str, str] = {}
        self.new_speakers: set[str] = set()
        self.hidden: dict = {}
        self.timings: dict[str, float] = {}
        self.hmm = ""  # the aligner's HMM, relative to the private folder ("" when every clip came aligned)


def write_release(release: Release, *, staging: Path, say: Callable[[str], None]) -> Built:
    built = Built()
    public, private = staging / "public", staging / "private"
    public.mkdir()
    private.mkdir()
    tick = time.monotonic()

    # Only from a trust state a full recompute reproduces, and read while no vote can change it.
    with trust_settled():
        clips = list(release_clips_valid()[: release.limit] if release.limit else release_clips_valid())
    if not clips:
        raise ServiceError("release_empty", "There are no valid clips to release.")
    built.assignment, built.new_speakers = _splits_for(clips, release)
    built.hidden = _hidden_facts(built.assignment)
    if not built.hidden["formed"]:
        # Speakers an earlier release made hidden keep that split (never published), but too few of them are
        # left to score on blind: they are held back from this release altogether.
        clips = [c for c in clips if built.assignment[c.contributor.speaker_id] != "hidden"]
        built.assignment = {s: v for s, v in built.assignment.items() if v != "hidden"}
        if not clips:
            raise ServiceError("release_empty", "There are no valid clips to release.")
    withheld = _withheld_groups(clips)
    sources = _source_details(clips)  # before any work: a source without a usable licence stops the build
    options = release.facts.get("options", {})
    alignments = _read_alignments(options.get("alignments", ""))
    layout = _timit_layout(clips, built.assignment, withheld)
    audio_format = options.get("audio_format", "flac")  # a release created before the option had FLAC
    say(f"{len(clips)} clips from {len(built.assignment)} speakers")

    # Every file the build writes itself goes through a writer, which keeps its checksum (and a small file's bytes
    # for the tars): nothing it wrote is read again to be hashed.
    out, hidden_out = FileWriter(public), FileWriter(private)
    places = {"public": public, "private": private, "layout": layout, "audio_format": audio_format}
    audio = [_audio_place(clip, built.assignment, **places) for clip in clips]
    writers = [out if root == public else hidden_out for _, root in audio]
    earlier_version, earlier = _earlier_wavs(release) if audio_format == "wav" else ("", {})
    stored = StoredFlac(staging / "flac")

    def copy(clip: Clip, rel: str, writer: FileWriter) -> tuple[int, str]:
        return _copy_audio(stored.path(clip), rel, writer, earlier.get(clip.sha256))

    # The copies (a FLAC decoded to RIFF per clip) are libsndfile's work, outside the GIL: a thread per core. On
    # object storage each thread fetches its clip first, once: the shards read the same local file.
    with ThreadPoolExecutor(BUILD_WORKERS) as pool:
        copied = list(pool.map(copy, clips, [rel for rel, _ in audio], writers))
    for clip, (rel, _), (n, _) in zip(clips, audio, copied, strict=True):
        built.entries.append(_freeze(clip, built.assignment, withheld, alignments, audio=rel, frames=n))
    flac = {c.sha256: stored.path(c) for c, (_, root) in zip(clips, audio, strict=True) if root == public}
    if earlier:
        how = Counter(way for _, way in copied)
        say(f"{how['copied']} clips' WAV copied from release {earlier_version}, {how['decoded']} decoded")
    built.timings["freeze_s"] = time.monotonic() - tick
    tick = time.monotonic()
    built.entries, alignment_facts, built.hmm = _align(
        built.entries, release=release, public=public, private=private, staging=staging, say=say
    )
    built.timings["align_s"] = time.monotonic() - tick
    entries_public = [e for e in built.entries if e.split != "hidden"]
    entries_hidden = [e for e in built.entries if e.split == "hidden"]

    grouped = exports.by_split(entries_public)
    splits_present = [s for s in PUBLIC_SPLITS if grouped.get(s)]
    facts = release_facts(
        built.entries,
        withheld=withheld,
        version=release.version,
        min_group_speakers=release_settings().min_group_speakers,
        trust=getattr(settings, "TRUST", {}),
        hidden=built.hidden,
        sources=sources,
        invalid_reasons=_invalid_reasons(),
    )
    facts["alignment"] = alignment_facts
    facts["options"] = options  # the datasheet names the audio format

    # The Parquet shards (pyarrow reads, encodes and compresses mostly outside the GIL) and the plots on the pool's
    # threads, the text exports on this one meanwhile. The plots hold the GIL, and the text exports' thousands of
    # small writes each give it up and wait for it again, but on a loaded 2-core machine the three side by side
    # took a second less than the plots after the text exports (benchmarks/release.py, session 8).
    tick = started = time.monotonic()
    with ThreadPoolExecutor(BUILD_WORKERS) as pool:  # leaving it waits for the threads, an error here or not
        parquet = [pool.submit(_write_parquet, out, split, grouped[split], flac) for split in splits_present]
        plots = pool.submit(_write_plots, public, facts)  # after the shards: the train shard is the longest
        exports.write_jsonl(out, "manifest.jsonl", entries_public)
        exports.write_jsonl(hidden_out, "hidden/manifest.jsonl", entries_hidden)
        exports.write_timit_labels(hidden_out, entries_hidden)
        timit_files = exports.write_timit(out, entries_public)
        for split in splits_present:
            exports.write_kaldi(out, split, grouped[split])
            exports.write_lhotse(out, split, grouped[split])
        built.timings["text_exports_s"] = time.monotonic() - tick
        tick = time.monotonic()
        # Each from the start of this step to its end, on its thread; exports_wait_s is what the build waited after
        # its own text exports.
        built.timings["plots_s"] = plots.result() - started
        built.timings["parquet_s"] = max((future.result() for future in parquet), default=started) - started
        built.timings["exports_wait_s"] = time.monotonic() - tick
    say("exports written")

    tick = time.monotonic()
    out.put("phones.txt", "".join(f"{p}\n" for p in INVENTORY))
    lexicon: dict[str, str] = {}
    for e in entries_public:
        for word, phones in zip(e.words, e.phones, strict=True):
            lexicon.setdefault(word, " ".join(phones))
    out.put("lexicon.txt", "".join(f"{w} {p}\n" for w, p in sorted(lexicon.items())))
    exports.write_kaldi_lang(out, PHONES, SILENCE, lexicon)
    out.put("phone_map_timit39.tsv", phone_map_tsv())
    # The leaderboard's contract travels with the data it is scored on; its version is in its title.
    out.put("SUBMISSION_SPEC.md", SUBMISSION_SPEC.read_bytes())
    delta = _delta(release, entries_public)
    out.put("DELTA.json", json.dumps(delta, indent=1, sort_keys=True) + "\n")
    created = timezone.localtime(release.created_at).strftime("%Y-%m-%d")
    readme = render_readme(facts, created=created, delta=delta if delta["previous"] else None)
    # Each source's terms; the datasheet is also the release's dataset card (`load_dataset(release root)`).
    out.put("LICENSE", render_licence(facts))
    hf_sizes = _hf_sizes(out, grouped)
    cards = {"README.md": readme, "hf/README.md": hf_card_body(facts, created=created)}
    out.put("README.md", _card(release.version, hf_sizes, facts, "hf/data/") + readme)
    exports.write_hf_card(out, _card(release.version, hf_sizes, facts, "data/"), cards["hf/README.md"])
    facts["delta"] = {k: (len(v) if isinstance(v, list) else v) for k, v in delta.items()}
    facts["options"] = release.facts.get("options", {})
    out.put(
        "datasheet.json",
        json.dumps({k: v for k, v in facts.items() if k != "durations_s"}, indent=1, sort_keys=True) + "\n",
    )
    built.timings["datasheet_s"] = time.monotonic() - tick

    tick = time.monotonic()
    sizes = files_under(public)
    content = list(sizes)
    out.verified(sizes)  # a file written over by other means since is hashed from disk below
    built.sums.update({rel: out.sums[rel] for rel in content if rel in out.sums})
    built.sums.update(files_sha256(public, [rel for rel in content if rel not in out.sums], workers=BUILD_WORKERS))
    built.timings["checksums_s"] = time.monotonic() - tick

    tick = time.monotonic()
    classified = {rel: _classify(rel, release.version) for rel in content}
    # The tree's split is its speaker's, not its folder's (dev and test share TEST, as in TIMIT).
    classified.update({rel: ("timit", split) for rel, split in timit_files.items()})
    package_sums = _write_packages(release, out, content, classified, built.sums, splits_present, hf_sizes, facts,
                                   cards)  # fmt: skip
    for rel in package_sums:
        classified[rel] = _classify(rel, release.version)
        sizes[rel] = (public / rel).stat().st_size
    out.put(
        "packages/SHA256SUMS",
        "".join(f"{digest}  {Path(rel).name}\n" for rel, digest in sorted(package_sums.items())),
    )
    built.sums.update(package_sums)
    classified["packages/SHA256SUMS"] = ("checksums", "")
    # The release's own list covers every file beside it, the tars included (each tar has its own inside).
    built.sums["packages/SHA256SUMS"] = out.sums["packages/SHA256SUMS"]
    out.put("SHA256SUMS", sha256sums_text(built.sums))
    built.sums["SHA256SUMS"] = out.sums["SHA256SUMS"]
    classified["SHA256SUMS"] = ("checksums", "")
    for rel in ("packages/SHA256SUMS", "SHA256SUMS"):
        sizes[rel] = out.sizes[rel]
    built.timings["packages_s"] = time.monotonic() - tick

    built.files = classified
    built.sizes = {rel: sizes[rel] for rel in classified}
    facts["bytes"] = {"content": sum(built.sizes[r] for r in content), "total": sum(built.sizes.values())}
    facts["timings"] = {k: round(v, 3) for k, v in built.timings.items()}
    built.facts = facts
    say("packaged")
    return built


def _source_details(clips: list[Clip]) -> dict[str, dict[str, str]]:
    """Each imported corpus's licence, URL and citation by name. A source without a licence a release can carry
    (one recorded before sources had licences: NOASSERTION) stops the build with how to state it."""
    details: dict[str, dict[str, str]] = {}
    for clip in clips:
        source = clip.source
        if source is None or source.name in details:
            continue
        try:
            licence_get(source.licence)
        except UnknownLicence as exc:
            raise ServiceError(
                "source_licence_unknown",
                f"Clips of {source.name} have no licence a release can carry ({exc}) State it with `manage.py "
                f"corpus_source {source.name} --licence SPDX-ID --citation TEXT [--url URL]`.",
            ) from exc
        details[source.name] = {"licence": source.licence, "url": source.url, "citation": source.citation}
    return details


def _hf_sizes(out: FileWriter, grouped: Mapping[str, list[ReleaseEntry]]) -> dict[str, tuple[int, int]]:
    """Per split present: (clips, bytes of its Parquet shards), for the dataset cards."""
    return {
        split: (
            len(entries),
            sum(p.stat().st_size for p in out.root.glob(exports.hf_shard_prefix(split) + "*.parquet")),
        )
        for split, entries in grouped.items()
        if entries
    }


def _write_plots(public: Path, facts: Mapping) -> float:
    """The datasheet's plots; returns when they were done (``time.monotonic``)."""
    write_plots(public, facts)
    return time.monotonic()


def _write_parquet(out: FileWriter, split: str, entries: list[ReleaseEntry], flac: Mapping[str, Path]) -> float:
    """A split's Parquet shards, each hashed as soon as it is written (on this thread, its pages still cached);
    returns when it finished (``time.monotonic``)."""
    for path in exports.write_parquet(out.root, split, entries, flac=flac):
        out.adopt(path.relative_to(out.root).as_posix())
    return time.monotonic()


def _card(version: str, sizes: Mapping[str, tuple[int, int]], facts: Mapping, prefix: str) -> str:
    licences = [row["licence_hf"] for row in facts["sources"]]
    return exports.hf_card_header(version=version, splits=sizes, licences=licences, data_prefix=prefix)


def _write_packages(
    release: Release,
    out: FileWriter,
    content: list[str],
    classified: Mapping[str, tuple[str, str]],
    sums: Mapping[str, str],
    splits: list[str],
    hf_sizes: Mapping[str, tuple[int, int]],
    facts: Mapping,
    cards: Mapping[str, str],
) -> dict[str, str]:
    """The whole release as one tar and each split as its own, every one standing alone: it unpacks into its own
    folder and carries a ``SHA256SUMS`` of exactly its files; a split's carries the datasheet and cards whose
    configs name only that split, so ``load_dataset`` reads it without the others. Returns {tar: sha256}."""
    version = release.version
    mtime = int(release.created_at.timestamp())
    top = f"openphone-{version}"
    plans: dict[str, tuple[str, list[str], dict[str, bytes]]] = {f"packages/{top}.tar": (top, list(content), {})}
    for split in splits:
        sizes = {split: hf_sizes[split]} if split in hf_sizes else {}
        extra = {
            "README.md": (_card(version, sizes, facts, "hf/data/") + cards["README.md"]).encode(),
            "hf/README.md": (_card(version, sizes, facts, "data/") + cards["hf/README.md"]).encode(),
        }
        members = [rel for rel in content if classified[rel][1] in (split, "") and rel not in extra]
        plans[f"packages/{top}-{split}.tar"] = (f"{top}-{split}", members, extra)

    def pack(rel: str) -> str:
        folder, members, extra = plans[rel]
        own = {m: sums[m] for m in members} | {m: bytes_sha256(data) for m, data in extra.items()}
        extra = {**extra, "SHA256SUMS": sha256sums_text(own).encode()}
        return write_tar(out.root / rel, out.root, members, top=folder, mtime=mtime, extra=extra, held=out.held)

    # Side by side: the whole release's tar (half the bytes) on one thread, the split tars on the other.
    with ThreadPoolExecutor(BUILD_WORKERS) as pool:
        return dict(zip(plans, pool.map(pack, plans), strict=True))


def _min_hidden_speakers() -> int:
    """A hidden split has at least as many speakers as the smallest published demographic group (5)."""
    return max(int(release_settings().min_group_speakers), 1)


def _hidden_eligible(speaker_ids: set[str]) -> set[str]:
    """Speakers who may be hidden: every clip of theirs (in this release or not) was recorded on the platform.
    An imported corpus is public elsewhere, so its speakers can be identified by matching sentence texts."""
    imported = set(
        Clip.objects.filter(contributor__speaker_id__in=speaker_ids, provenance=Provenance.IMPORTED)
        .values_list("contributor__speaker_id", flat=True)
        .distinct()
    )
    return speaker_ids - imported


def _splits_for(clips: list[Clip], release: Release) -> tuple[dict[str, str], set[str]]:
    """Stable assignment: speakers keep the split an earlier release gave them; new ones are balanced, and their
    split is persisted at once, so that two builds running side by side cannot place a speaker differently
    (whichever commits first wins, and both read it back).

    Hidden is drawn only from speakers recorded on the platform. A speaker an earlier release made hidden who is
    no longer eligible (some of their clips are imported) is moved to a public split and the move persisted:
    their recordings are public elsewhere, so they were never hidden in fact, and publishing them reveals
    nothing the source corpus does not; a board scored on that earlier hidden split is not blind either way."""
    speakers = {
        c.contributor.speaker_id: SplitSpeaker(
            c.contributor.speaker_id, c.contributor.gender, c.contributor.age_band, c.contributor.accent
        )
        for c in clips
    }
    eligible = _hidden_eligible(set(speakers))
    previous = dict(SpeakerSplit.objects.filter(speaker_id__in=speakers).values_list("speaker_id", "split"))
    assignment = assign_splits(
        speakers.values(),
        key=release_settings().split_key.encode(),
        previous=previous,
        hidden_eligible=eligible,
        min_hidden=_min_hidden_speakers(),
    )
    new = set(speakers) - set(previous)
    SpeakerSplit.objects.bulk_create(
        [SpeakerSplit(speaker_id=s, split=assignment[s], first_release=release) for s in sorted(new)],
        ignore_conflicts=True,
        batch_size=2000,
    )
    for sid in sorted(s for s, split in previous.items() if split == "hidden" and s not in eligible):
        logger.warning("release %s: speaker %s moved out of hidden (imported clips)", release.version, sid)
        SpeakerSplit.objects.filter(speaker_id=sid, split="hidden").update(split=assignment[sid])
    persisted = dict(SpeakerSplit.objects.filter(speaker_id__in=speakers).values_list("speaker_id", "split"))
    # A concurrent build may have persisted another placement first: never hidden for an ineligible speaker.
    final = {s: persisted.get(s, assignment[s]) for s in speakers}
    return {s: (assignment[s] if v == "hidden" and s not in eligible else v) for s, v in final.items()}, new


def _hidden_facts(assignment: Mapping[str, str]) -> dict:
    minimum = _min_hidden_speakers()
    formed = hidden_split_formed(assignment, min_hidden=minimum)
    hidden = sum(1 for v in assignment.values() if v == "hidden")
    return {
        "formed": formed,
        "blind": formed,
        "speakers": hidden if formed else 0,
        "held_back_speakers": 0 if formed else hidden,
        "min_speakers": minimum,
        "source": "speakers recorded on the platform only",
        "leaderboard_split": "hidden" if formed else "test",
    }


def _age_group(age_band: str) -> str:
    return "child" if age_band in CHILD_AGE_BANDS else "adult" if age_band else ""


def _demographic(contributor, attr: str) -> str:
    if attr == "age_group":
        return _age_group(contributor.age_band)
    return (getattr(contributor, attr) or "").strip()


def _withheld_groups(clips: list[Clip]) -> dict[str, set[str]]:
    """Per attribute, the speakers whose (given) value is shared by fewer than the minimum number of speakers in
    the release: their value is published as empty."""
    contributors = {c.contributor.speaker_id: c.contributor for c in clips}
    minimum = release_settings().min_group_speakers
    withheld: dict[str, set[str]] = {}
    for attr in PUBLISHED_DEMOGRAPHICS:
        sizes = Counter(_demographic(c, attr).lower() for c in contributors.values())
        withheld[attr] = {
            sid for sid, c in contributors.items() if (v := _demographic(c, attr).lower()) and sizes[v] < minimum
        }
    return withheld


def _read_alignments(path: str) -> dict[str, list[tuple[int, int, str]]]:
    """Forced alignments from the training back end: JSONL of ``{"sha256": ..., "phones": [[start_s, end_s,
    phone], ...]}``; times in seconds, written into ``.phn`` in samples."""
    if not path:
        return {}
    found: dict[str, list[tuple[int, int, str]]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                found[row["sha256"]] = [
                    (round(float(s) * SAMPLE_RATE), round(float(t) * SAMPLE_RATE), str(p)) for s, t, p in row["phones"]
                ]
    return found


def _audio_place(
    clip: Clip,
    assignment: Mapping[str, str],
    *,
    public: Path,
    private: Path,
    layout: Mapping[str, exports.TimitSpeaker],
    audio_format: str,
) -> tuple[str, Path]:
    """(the clip's audio path in the release, the root it is relative to): the TIMIT tree for a public split, the
    private root for the hidden one."""
    speaker = clip.contributor.speaker_id
    split = assignment[speaker]
    if split == "hidden":
        return f"hidden/audio/{speaker}/{speaker}_{clip.prompt_id:06d}.flac", private
    prompt_type = clip.prompt.prompt_type
    return exports.timit_audio_path(split, layout[speaker], prompt_type, clip.prompt_id, audio_format), public


def _freeze(
    clip: Clip,
    assignment: Mapping[str, str],
    withheld: Mapping[str, set[str]],
    alignments: Mapping[str, list[tuple[int, int, str]]],
    *,
    audio: str,
    frames: int,
) -> ReleaseEntry:
    contributor = clip.contributor
    speaker = contributor.speaker_id
    split = assignment[speaker]
    utt_id = f"{speaker}_{clip.prompt_id:06d}"
    published = {
        attr: "" if speaker in withheld[attr] else _demographic(contributor, attr) for attr in PUBLISHED_DEMOGRAPHICS
    }
    return ReleaseEntry(
        utt_id=utt_id,
        split=split,
        speaker_id=speaker,
        text=clip.prompt.text,
        words=list(clip.prompt.words),
        phones=[list(w) for w in clip.prompt.phones],
        audio=audio,
        sha256=clip.sha256,
        num_samples=frames,
        duration_s=round(frames / SAMPLE_RATE, 4),
        prompt_id=clip.prompt_id,
        prompt_type=clip.prompt.prompt_type,
        provenance=clip.provenance,
        votes_counted=clip.votes_counted,
        votes_valid_counted=clip.votes_valid_counted,
        score=round(clip.score, 4),
        alignment=alignments.get(clip.sha256),
        source=clip.source.name if clip.source is not None else PLATFORM_SOURCE,  # no query without a source_id
        licence=clip.source.licence if clip.source is not None else PLATFORM_LICENCE,
        **published,
    )


@dataclass(frozen=True)
class EarlierWav:
    """A clip's RIFF copy in an earlier ready release: where it is, and what that release recorded of it."""

    path: Path
    sha256: str
    frames: int

    def read_verified(self) -> bytes | None:
        """Its bytes when they are exactly what decoding the clip gives (the canonical header of its sample count
        at the platform's rate) and what the earlier release's checksum says; None otherwise (gone, damaged,
        written by other means), and the clip is decoded again."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        if (
            len(data) != WAV_HEADER + 2 * self.frames
            or data[:WAV_HEADER] != wav_header(self.frames, SAMPLE_RATE)
            or bytes_sha256(data) != self.sha256
        ):
            logger.warning("%s does not match its release's checksum: the clip is decoded again", self.path)
            return None
        return data


def _earlier_wavs(release: Release) -> tuple[str, dict[str, EarlierWav]]:
    """(the previous ready release's version, its WAV of each clip by the clip's SHA-256), for this build to copy
    (verified) rather than decode the same FLAC again: most clips of a release were in the one before. ("", {})
    when there is no such release, or its files are not on local storage, or its manifest cannot be read."""
    previous = _previous_ready(release)
    if previous is None or not previous.manifest_path:
        return "", {}
    recorded = {
        path: (sha256, storage_name)
        for path, sha256, storage_name in previous.files.filter(path__iendswith=".wav").values_list(
            "path", "sha256", "storage_name"
        )
    }
    try:
        entries = release_public_entries(release=previous)
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("release %s: the manifest of %s could not be read (%s)", release.version, previous.version, exc)
        return "", {}
    earlier: dict[str, EarlierWav] = {}
    for entry in entries:
        if entry.audio in recorded:
            sha256, storage_name = recorded[entry.audio]
            local = local_path(storage_name)
            if local is None:
                return "", {}
            earlier[entry.sha256] = EarlierWav(local, sha256, entry.num_samples)
    return previous.version, earlier


class StoredFlac:
    """Each clip's stored FLAC as a local file: the stored file itself on local storage, else a copy fetched into
    ``folder`` (the staging folder's, removed with it) the first time it is asked for. The WAV or FLAC copy of the
    tree and the Parquet shards read the same file, so object storage serves each clip once per build."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fetched: dict[str, Path] = {}

    def path(self, clip: Clip) -> Path:
        local = local_path(clip.audio.name)
        if local is not None:
            return local
        if clip.sha256 not in self._fetched:  # each clip is asked for by one thread at a time
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / f"{clip.sha256}.flac"
            with default_storage.open(clip.audio.name, "rb") as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            self._fetched[clip.sha256] = target
        return self._fetched[clip.sha256]


def _copy_audio(source: Path, rel: str, out: FileWriter, earlier: EarlierWav | None = None) -> tuple[int, str]:
    """The clip's stored FLAC (``source``, a local file) as it is, or decoded into RIFF PCM (16-bit, the stored
    samples exactly) for a .WAV, written to ``rel`` through ``out``; returns the number of samples and how
    (``flac``, ``decoded``, or ``copied`` from an earlier release's WAV of the clip, ``earlier``, verified: a tenth
    of the CPU of decoding). The WAV is made in memory and written in one go (libsndfile fsyncs a file it closes,
    ``sf_write_sync``, which cost more than the decoding)."""
    if rel.lower().endswith(".flac"):
        data = source.read_bytes()
        out.put(rel, data)
        return sf.info(io.BytesIO(data)).frames, "flac"
    if earlier is not None and (verified := earlier.read_verified()) is not None:
        out.put(rel, verified, sha256=earlier.sha256)
        return earlier.frames, "copied"
    with sf.SoundFile(str(source)) as opened:  # libsndfile's own I/O, not Python callbacks
        wav, frames = wav_pcm16(opened)
    out.put(rel, wav)
    return frames, "decoded"


WAV_HEADER = 44  # RIFF, fmt and data chunk headers of a plain PCM file


def wav_header(frames: int, rate: int) -> bytes:
    """The canonical 44 bytes libsndfile writes before ``frames`` mono 16-bit samples at ``rate``."""
    data = 2 * frames
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 1, rate, 2 * rate, 2, 16,
                       b"data", data)  # fmt: skip


def wav_pcm16(source: sf.SoundFile) -> tuple[bytes | bytearray | memoryview, int]:
    """(the bytes libsndfile writes for ``source``'s samples as a 16-bit RIFF WAV, the number of samples). A mono
    clip (every clip the platform stores) is decoded straight after a header made here, the canonical 44 bytes
    libsndfile writes for mono 16-bit PCM (``test_release_speed`` compares the two): one buffer, no encoding
    pass. Anything else goes through libsndfile."""
    if source.channels != 1 or not 0 <= source.frames < (1 << 31):
        samples = source.read(dtype="int16")
        encoded = io.BytesIO()
        sf.write(encoded, samples, source.samplerate, subtype="PCM_16", format="WAV")
        return encoded.getbuffer(), len(samples)
    buffer = bytearray(WAV_HEADER + 2 * source.frames)
    frames = len(source.read(dtype="int16", out=np.frombuffer(buffer, dtype="<i2", offset=WAV_HEADER)))
    del buffer[WAV_HEADER + 2 * frames :]  # a file that held fewer samples than its header said
    buffer[:WAV_HEADER] = wav_header(frames, source.samplerate)
    return buffer, frames


def _timit_layout(
    clips: list[Clip], assignment: Mapping[str, str], withheld: Mapping[str, set[str]]
) -> dict[str, exports.TimitSpeaker]:
    """Each public speaker's TIMIT name and dialect-region group, from the values the release publishes (a withheld
    gender or accent shows in neither)."""
    published: dict[str, tuple[str, str]] = {}
    for clip in clips:
        sid = clip.contributor.speaker_id
        if assignment[sid] != "hidden":
            gender, accent = (
                "" if sid in withheld[attr] else _demographic(clip.contributor, attr) for attr in ("gender", "accent")
            )
            published[sid] = (gender, accent)
    try:
        return exports.timit_speakers(published)
    except ValueError as exc:
        raise ServiceError("timit_names", str(exc)) from exc


def _align(
    entries: list[ReleaseEntry],
    *,
    release: Release,
    public: Path,
    private: Path,
    staging: Path,
    say: Callable[[str], None],
) -> tuple[list[ReleaseEntry], dict, str]:
    """Every clip's phone alignment, written into its entry: the one supplied with the build (``alignments``, a
    training run's) where its phones are the clip's canonical ones, else training/ml's monophone HMM. That HMM
    starts from the most recent one trained on the platform (``release_hmm_latest``), re-estimated on this
    release's train split, or from a flat start when there is none or it cannot be used (the reason is logged and
    told in the datasheet; never a failed build). Returns the entries, the datasheet's account of who aligned
    what, and where the HMM was saved under the private folder, for the next release to start from."""
    from training.ml.hmm_align import save_hmm
    from training.ml.release_align import align_files

    supplied = {i for i, e in enumerate(entries) if exports.alignment_matches(e)}
    todo = [i for i in range(len(entries)) if i not in supplied]
    aligned = list(entries)
    for i in supplied:
        aligned[i] = replace(entries[i], alignment=_to_end(entries[i].alignment, entries[i].num_samples))
    hmm_file, aligner = "", {"method": "supplied"}
    if todo:
        source, init, fallback = _starting_hmm(release, staging)
        say(f"aligning {len(todo)} clips (HMM from {f'{source.kind} {source.name}' if init else 'a flat start'})")
        paths = [(private if entries[i].split == "hidden" else public) / entries[i].audio for i in todo]
        train = [k for k, i in enumerate(todo) if entries[i].split == "train"]
        result = align_files(paths, [entries[i].phones for i in todo], train=train, init=init, workers=BUILD_WORKERS)
        for i, alignment in zip(todo, result.phones, strict=True):
            aligned[i] = replace(entries[i], alignment=alignment)
        hmm_file = HMM_FILE
        (private / hmm_file).parent.mkdir(parents=True, exist_ok=True)
        save_hmm(result.hmm, private / hmm_file)
        aligner = _aligner_facts(result, source if init else None, fallback)
    missing = [e.utt_id for e in aligned if not exports.alignment_matches(e)]
    if missing:
        raise ServiceError("alignment_failed", f"{len(missing)} clips have no alignment, e.g. {missing[0]}.")
    public_todo = sum(1 for i in todo if entries[i].split != "hidden")
    public_supplied = sum(1 for i in supplied if entries[i].split != "hidden")
    facts = {"clips": public_todo + public_supplied, "by_hmm": public_todo, "supplied": public_supplied}
    return aligned, {**facts, **aligner}, hmm_file


def _starting_hmm(release: Release, staging: Path):
    """(source, loaded HMM, why it was not used): the latest HMM on the platform, or (source, None, reason) when
    it cannot start this aligner (unreadable, missing, another phone set or feature front end), or (None, None,
    "") when there is none."""
    from training.ml.hmm_align import HmmMismatch
    from training.ml.release_align import load_release_hmm

    source = release_hmm_latest(release=release)
    if source is None:
        return None, None, ""
    local = staging / "start-hmm.pt"  # the staging folder is removed after the build
    try:
        with default_storage.open(source.storage_name, "rb") as handle, local.open("wb") as out:
            shutil.copyfileobj(handle, out)
        return source, load_release_hmm(local), ""
    except (OSError, HmmMismatch) as exc:
        why = str(exc) if isinstance(exc, HmmMismatch) else f"it could not be read ({type(exc).__name__})"
        reason = f"the HMM of {source.kind.replace('_', ' ')} {source.name} was not used: {why}"
        logger.warning("release %s: %s (%s); aligning from a flat start", release.version, reason, source.storage_name)
        return source, None, reason


def _aligner_facts(result: Aligned, source: HmmSource | None, fallback: str) -> dict:
    """The datasheet's account of the HMM: where it started, what it did on this release, and its boundary accuracy
    on espeak-ng readings measured now, on this very model (or, without libespeak-ng, the flat-start recipe's
    offline figure, said to be that)."""
    from training.ml.release_align import OFFLINE_ESPEAK, espeak_accuracy, model_description

    facts: dict = {
        "method": "hmm-from-model" if source else "hmm-flat-start",
        "model": model_description(result.hmm),
        "initialised_from": {"kind": source.kind, "name": source.name} if source else None,
        "em_passes": result.em_passes,
        "train_clips": result.train_clips,
    }
    if fallback:
        facts["fallback"] = fallback
    try:
        measured = espeak_accuracy(result.hmm, ESPEAK_CHECK_SENTENCES)
        why = "libespeak-ng is not installed where it was built"
    except (OSError, ValueError, KeyError) as exc:  # a check, not the build: a broken espeak-ng install fails neither
        logger.warning("espeak-ng check of the aligner failed: %s", exc)
        measured, why = None, f"the espeak-ng check failed ({type(exc).__name__})"
    if measured is not None:
        facts["espeak"] = {"measured": "build", **measured}
    else:
        facts["espeak"] = {"measured": "offline", "why": why, **OFFLINE_ESPEAK}
    return facts


def _to_end(alignment, num_samples: int) -> list[tuple[int, int, str]]:
    """The last segment runs to the end of the file, as TIMIT's .PHN do (an aligner's last frame ends earlier)."""
    *head, (start, _, phone) = alignment
    return [*head, (start, num_samples, phone)]


def _previous_ready(release: Release) -> Release | None:
    return (
        Release.objects.filter(status=ReleaseStatus.READY, created_at__lte=release.created_at)
        .exclude(pk=release.pk)
        .order_by("-created_at", "-id")
        .first()
    )


def _invalid_reasons() -> dict[str, int]:
    """Every "invalid" vote cast on the platform up to now, by reason (``unstated``: cast before reasons were
    asked), over all clips: the datasheet's summary of why recordings were rejected."""
    rows = Vote.objects.filter(verdict=Verdict.INVALID).values_list("reason").annotate(n=Count("id")).order_by()
    return dict(sorted((reason or "unstated", n) for reason, n in rows))


def _delta(release: Release, entries: list[ReleaseEntry]) -> dict:
    """Utterances added, removed and changed (same id, other audio) against the previous ready release; of the
    removed, ``withdrawn`` lists those whose author withdrew the clip and ``deleted`` those whose author deleted
    their account (contributors.services.own_data), so that users of the previous release can drop them too."""
    previous = _previous_ready(release)
    release.previous = previous
    if previous is None or not previous.manifest_path:
        return {"previous": None, "added": [e.utt_id for e in entries], "removed": [], "changed": [],
                "withdrawn": [], "deleted": [],
                "speakers_added": len({e.speaker_id for e in entries}), "speakers_removed": 0}  # fmt: skip
    with default_storage.open(previous.manifest_path, "rb") as handle:
        before = {}
        for line in handle:
            if line.strip():
                row = json.loads(line)
                before[row["utt_id"]] = (row["sha256"], row["speaker_id"])
    now = {e.utt_id: (e.sha256, e.speaker_id) for e in entries}
    speakers_before = {s for _, s in before.values()}
    speakers_now = {s for _, s in now.values()}
    removed = sorted(set(before) - set(now))
    withdrawn, deleted = _removed_by_author(removed, before)
    return {
        "previous": previous.version,
        "added": sorted(set(now) - set(before)),
        "removed": removed,
        "withdrawn": withdrawn,
        "deleted": deleted,
        "changed": sorted(u for u in set(now) & set(before) if now[u][0] != before[u][0]),
        "speakers_added": len(speakers_now - speakers_before),
        "speakers_removed": len(speakers_before - speakers_now),
    }


def _removed_by_author(removed: list[str], before: Mapping[str, tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(withdrawn, deleted) among the removed utterances, found by the published clip's sha256: an utterance's id
    is its speaker id and prompt, and a deleted account's clips keep both, but the sha256 names one recording."""
    by_sha = {before[utt][0]: utt for utt in removed}
    withdrawn: list[str] = []
    deleted: list[str] = []
    found = Clip.objects.filter(sha256__in=list(by_sha), withdrawn_at__isnull=False).values_list(
        "sha256", "contributor__deleted_at"
    )
    for sha, deleted_at in found:
        (deleted if deleted_at is not None else withdrawn).append(by_sha[sha])
    return sorted(withdrawn), sorted(deleted)


def _classify(rel: str, version: str) -> tuple[str, str]:
    """(format, split) of a public file, from its place in the release."""
    parts = rel.split("/")
    head = parts[0]
    if rel == "manifest.jsonl":
        return ("manifest", "")
    if rel in ("README.md", "datasheet.json") or head == "plots":
        return ("datasheet", "")
    if rel == "SUBMISSION_SPEC.md":
        return ("spec", "")
    if rel in ("SHA256SUMS", "packages/SHA256SUMS"):
        return ("checksums", "")
    if rel == "DELTA.json":
        return ("delta", "")
    if head == "timit":
        return ("timit", "")  # the builder gives each per-speaker file its split (exports.write_timit)
    if head == "kaldi":  # kaldi/dict and kaldi/lang serve every split
        return (head, parts[1] if parts[1] in PUBLIC_SPLITS else "")
    if head == "lhotse":
        return ("lhotse", parts[-1].removesuffix(".jsonl.gz").rsplit("_", 1)[-1])
    if head == "hf":  # shards are named by the Hub's split names: dev's are validation-*
        hf_split = parts[-1].split("-", 1)[0] if parts[1] == "data" else ""
        return ("hf", {v: k for k, v in exports.HF_SPLITS.items()}.get(hf_split, hf_split))
    if head == "packages":
        stem = parts[-1].removesuffix(".tar").removeprefix(f"openphone-{version}")
        return ("package", stem.removeprefix("-"))
    return ("metadata", "")
