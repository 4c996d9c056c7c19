"""A release's datasheet: its numbers (``facts``), the README written from them, and PNG plots.

Plain Python on the frozen entries; demographics are counted on the published values, so a group withheld
from the metadata is withheld here too.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from benchmark.exports import ReleaseEntry, scored_entries
from contributors.services.prompt_selection import DIPHONES_POSSIBLE, diphones_of
from core.phones import PHONES
from core.splits import SPLITS

WITHHELD = "withheld"
NOT_GIVEN = "not given"
DEMOGRAPHICS = ("gender", "age_group", "age_band", "accent", "first_language")


def _group(value: str, withheld: bool) -> str:
    return WITHHELD if withheld else (value or NOT_GIVEN)


def _small_cells_withheld(counts: Counter[str], minimum: int) -> dict[str, int]:
    """One split's speakers per value with every group under ``minimum`` speakers folded into ``withheld``; while
    the withheld count is itself under the minimum (so that it could be worked out from the others), the next
    smallest group is folded in too. "not given" is no group and stays. A split of fewer than ``minimum``
    speakers (a small hidden split) is thus published as one count, all withheld."""
    groups = {v: n for v, n in counts.items() if v not in (WITHHELD, NOT_GIVEN)}
    folded = counts.get(WITHHELD, 0)
    for value, n in sorted(groups.items(), key=lambda item: (item[1], item[0])):
        if n < minimum or 0 < folded < minimum:
            folded += n
            del groups[value]
    out = dict(groups)
    if counts.get(NOT_GIVEN):
        out[NOT_GIVEN] = counts[NOT_GIVEN]
    if folded:
        out[WITHHELD] = folded
    return dict(sorted(out.items()))


def release_facts(
    entries: Sequence[ReleaseEntry],
    *,
    withheld: Mapping[str, set[str]],
    version: str,
    min_group_speakers: int,
    trust: Mapping[str, Any],
    hidden: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The datasheet's numbers for every split (hidden included, as counts only). ``hidden`` describes the hidden
    split (formed or not, and why) as the release builder decided it."""
    grouped: dict[str, list[ReleaseEntry]] = defaultdict(list)
    for e in entries:
        grouped[e.split].append(e)
    splits: dict[str, Any] = {}
    demographics: dict[str, Any] = {}
    coverage: dict[str, Any] = {}
    sentences: dict[str, set[int]] = {}
    for split in SPLITS:
        items = grouped.get(split, [])
        speakers = {e.speaker_id: e for e in items}
        sentences[split] = {e.prompt_id for e in items}
        splits[split] = {
            "clips": len(items),
            "speakers": len(speakers),
            "hours": round(sum(e.duration_s for e in items) / 3600, 3),
            "sentences": len(sentences[split]),
        }
        demographics[split] = {
            attr: _small_cells_withheld(
                Counter(_group(getattr(e, attr), e.speaker_id in withheld[attr]) for e in speakers.values()),
                min_group_speakers,
            )
            for attr in DEMOGRAPHICS
        }
        seen_pairs: set[tuple[str, str]] = set()
        seen_phones: set[str] = set()
        for e in items:
            seen_pairs |= diphones_of(e.phones)
            seen_phones.update(p for w in e.phones for p in w)
        coverage[split] = {
            "phones": len(seen_phones),
            "phones_total": len(PHONES),
            "diphones": len(seen_pairs),
            "diphones_possible": DIPHONES_POSSIBLE,
        }
    overlap = {f"{a}-{b}": len(sentences[a] & sentences[b]) for a, b in combinations(SPLITS, 2)}
    test_items = grouped.get("test", [])
    in_train = sum(1 for e in test_items if e.prompt_id in sentences["train"])
    scored_test = scored_entries(test_items)
    scored_in_train = sum(1 for e in scored_test if e.prompt_id in sentences["train"])
    public = [e for e in entries if e.split != "hidden"]
    phone_counts = Counter(p for e in public for w in e.phones for p in w)
    votes = [e.votes_counted for e in entries]
    return {
        "version": version,
        "licence": "CC0-1.0",
        "clips": len(entries),
        "speakers": len({e.speaker_id for e in entries}),
        "hours": round(sum(e.duration_s for e in entries) / 3600, 3),
        "splits": splits,
        "demographics": demographics,
        "withheld_speakers": {attr: len(ids) for attr, ids in withheld.items()},
        "min_group_speakers": min_group_speakers,
        "coverage": coverage,
        "phone_counts": {p: phone_counts.get(p, 0) for p in PHONES},
        "sentence_overlap": {
            "shared_sentences": overlap,
            "test_clips_with_train_sentence": in_train,
            "test_clips": len(test_items),
            "scored_test_clips": len(scored_test),
            "scored_test_clips_with_train_sentence": scored_in_train,
            "shared_prompt_clips": len(entries) - len(scored_entries(entries)),
        },
        "hidden_split": dict(hidden) if hidden is not None else {"formed": bool(grouped.get("hidden"))},
        "votes": {
            "clips_with_votes": sum(1 for v in votes if v),
            "mean_votes": round(statistics.fmean(votes), 2) if votes else 0.0,
            "median_votes": statistics.median(votes) if votes else 0,
            "mean_score": round(statistics.fmean(e.score for e in entries), 3) if entries else 0.0,
            "provenance": dict(sorted(Counter(e.provenance for e in entries).items())),
        },
        "trust": dict(trust),
        "aligned_clips": sum(1 for e in public if e.alignment),
        "durations_s": {s: [round(e.duration_s, 2) for e in grouped.get(s, [])] for s in SPLITS if s != "hidden"},
    }


def _table(rows: list[list[Any]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


CITATION = """@misc{{openphone-{version},
  title  = {{OpenPhone {version}: an open, crowdsourced TIMIT-like speech corpus}},
  author = {{{{OpenPhone contributors}}}},
  year   = {{{year}}},
  note   = {{Release {version}, CC0 1.0}},
}}"""


def _hidden_paragraph(facts: Mapping[str, Any]) -> str:
    hidden = facts.get("hidden_split") or {}
    minimum = hidden.get("min_speakers", facts["min_group_speakers"])
    rule = (
        "The hidden split is drawn only from speakers recorded on the platform, never from an imported corpus "
        "(those are public elsewhere: their speakers could be matched by sentence text)."
    )
    if hidden.get("formed", True):
        return (
            f"{rule} It has at least {minimum} speakers; its demographics are shown only for groups of {minimum} "
            "or more."
        )
    held = hidden.get("held_back_speakers", 0)
    return (
        f"{rule} **This release has no hidden split**: it has fewer than {minimum} eligible platform speakers for "
        "one, so its leaderboard ranks on the public `test` split, which is **not blind**."
        + (f" {held} speakers placed in hidden by an earlier release are held back from this one." if held else "")
    )


def render_readme(facts: Mapping[str, Any], *, created: str, delta: Mapping[str, Any] | None) -> str:
    """The datasheet as Markdown, placed at the root of the release as README.md."""
    version = facts["version"]
    splits = facts["splits"]
    split_rows = [[s, v["clips"], v["speakers"], v["hours"], v["sentences"]] for s, v in splits.items()]
    parts = [
        f"# OpenPhone {version}",
        "",
        f"Built {created}. Licence: **CC0 1.0** (public domain dedication); every contributor consented to CC0 "
        "before recording, and imported corpora are included under their own open licence (see Provenance).",
        "",
        "## Contents",
        "",
        _table(split_rows, ["split", "clips", "speakers", "hours", "sentences"]),
        "",
        "Splits are speaker-disjoint. `hidden` is never published: its audio and labels stay on the platform and "
        "score the leaderboard; only its counts appear here. A speaker keeps their split in every later release.",
        "",
        _hidden_paragraph(facts),
        "",
        "## Formats",
        "",
        "All exports were written from one frozen manifest, `manifest.jsonl` (one JSON object per clip).",
        "",
        "- `timit/SPLIT/SPEAKER/UTT.flac` with `.txt` (`0 N prompt`), `.wrd` and `.phn` (see Limitations).",
        "- `kaldi/SPLIT/`: `wav.scp` (a `flac -c -d -s` pipe, paths relative to the release root: run Kaldi from "
        "here or prefix them), `text`, `utt2spk`, `spk2utt`, `utt2dur`, `spk2gender` where every gender is published.",
        "- `lhotse/openphone_{recordings,supervisions}_SPLIT.jsonl.gz`: load with `lhotse.load_manifest(...)` and "
        "call `.with_path_prefix(RELEASE_ROOT)`.",
        '- `hf/data/SPLIT-*.parquet`: `datasets.load_dataset("parquet", data_dir="hf/data")`, or '
        '`load_dataset("RELEASE_ROOT/hf")` (the first names the dev split `validation`, as the Hub does); '
        "`audio` holds the FLAC bytes and its file name.",
        "- `phones.txt` (the 39 phones and silence), `lexicon.txt` (the pronunciations used), `datasheet.json`, "
        "`DELTA.json`, `SHA256SUMS` (verify with `sha256sum -c SHA256SUMS`).",
        "",
        "## Speakers",
        "",
        f"Speaker ids are pseudonymous. Any demographic group with fewer than {facts['min_group_speakers']} "
        "speakers in the release is withheld (shown as `withheld`) from this datasheet and from every metadata file.",
        "",
    ]
    for attr in ("gender", "age_group", "age_band", "accent"):
        values = sorted({v for s in facts["demographics"].values() for v in s[attr]})
        rows = [[s, *(facts["demographics"][s][attr].get(v, 0) for v in values)] for s in splits]
        parts += [f"### {attr.replace('_', ' ')} (speakers)", "", _table(rows, ["split", *values]), ""]
    cov = facts["coverage"]
    overlap = facts["sentence_overlap"]
    votes = facts["votes"]
    parts += [
        "## Phonetic coverage",
        "",
        _table(
            [
                [s, f"{c['phones']}/{c['phones_total']}", f"{c['diphones']}/{c['diphones_possible']}"]
                for s, c in cov.items()
            ],
            ["split", "phones", "diphones"],
        ),
        "",
        "Canonical phones come from CMUdict (stress removed) and the operator lexicon, not from listening.",
        "",
        "## Sentence overlap between splits",
        "",
        _table([[k, v] for k, v in overlap["shared_sentences"].items()], ["splits", "shared sentences"]),
        "",
        f"{overlap['test_clips_with_train_sentence']} of {overlap['test_clips']} test clips read a sentence that "
        "also occurs in train (shared prompts are read by everyone, as TIMIT's SA sentences).",
        "",
        "As TIMIT's recipes do with SA, the leaderboard scores no clip of a shared prompt (their `prompt_type` is "
        "`shared` in `manifest.jsonl`) and its phone bigram is estimated without them; they stay in the files. "
        f"Without them, {overlap.get('scored_test_clips_with_train_sentence', 0)} of "
        f"{overlap.get('scored_test_clips', 0)} scored test clips read a sentence that also occurs in train.",
        "",
        "## Validation",
        "",
        f"Clips with trustee votes: {votes['clips_with_votes']} of {facts['clips']}; mean counted votes per clip "
        f"{votes['mean_votes']} (median {votes['median_votes']}); mean Wilson score {votes['mean_score']}. "
        f"Provenance: {', '.join(f'{k} {v}' for k, v in votes['provenance'].items())}.",
        "",
        "Trust engine parameters at build time: "
        + ", ".join(f"`{k}={v}`" for k, v in facts["trust"].items())
        + ". A recorded clip is valid when the Wilson lower bound of its counted trustee votes exceeds MIN_TRUST; "
        "imported clips carry the status their corpus gave them.",
        "",
        "## Collection process",
        "",
        "Volunteers read prompts aloud in the browser after dedicating their recordings to CC0. Uploads are "
        "decoded, checked (duration, silence, clipping), downmixed and resampled to 16 kHz mono 16-bit FLAC. "
        "Trusted volunteers, assigned clips at random by the server, vote each clip valid or invalid; only valid "
        "clips enter a release. Prompts are shared sentences read by everyone, sentences chosen greedily for "
        "diphone coverage, and diverse sentences.",
        "",
    ]
    if delta:
        parts += [
            "## Changes since the previous release",
            "",
            f"Against {delta['previous']}: {len(delta['added'])} clips added, {len(delta['removed'])} removed, "
            f"{delta['speakers_added']} speakers added, {delta['speakers_removed']} removed (see `DELTA.json`).",
            "",
        ]
        if delta.get("withdrawn") or delta.get("deleted"):
            parts += [
                f"Of the clips removed, {len(delta.get('withdrawn', []))} were withdrawn by their speakers and "
                f"{len(delta.get('deleted', []))} belonged to speakers who deleted their accounts; `DELTA.json` lists "
                "them by utterance id (`withdrawn`, `deleted`). Please remove them from copies of earlier releases "
                "you keep using.",
                "",
            ]
    aligned = facts["aligned_clips"]
    parts += [
        "## Known limitations",
        "",
        (
            f"- `.phn` phone times exist for {aligned} clips, from forced alignment of the canonical phones."
            if aligned
            else "- No phone or word times yet: `.phn` files are absent and `.wrd` lists the words with their "
            "canonical phones; times come with forced alignments from the training back end."
        ),
        "- Canonical pronunciations, not what each speaker actually said; accents and errors are not transcribed.",
        "- Crowd validation can err; demographics are self-reported and optional.",
        "- Imported corpora may dominate some groups (for example non-native speakers of one first language).",
        "",
        "## How to cite",
        "",
        "```bibtex",
        CITATION.format(version=version, year=created[:4]),
        "```",
        "",
    ]
    return "\n".join(parts)


def write_plots(root: Path, facts: Mapping[str, Any]) -> list[Path]:
    """PNG plots of the distributions: clip durations per split, speakers by gender and age group, phone counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = root / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    fig, ax = plt.subplots(figsize=(7, 4))
    for split, durations in facts["durations_s"].items():
        if durations:
            ax.hist(durations, bins=30, alpha=0.6, label=split)
    ax.set(xlabel="clip duration (s)", ylabel="clips", title=f"Durations, release {facts['version']}")
    ax.legend()
    written.append(_save(fig, folder / "durations.png"))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, attr in zip(axes, ("gender", "age_group"), strict=True):
        splits = list(facts["demographics"])
        values = sorted({v for s in splits for v in facts["demographics"][s][attr]})
        bottom = [0] * len(splits)
        for value in values:
            heights = [facts["demographics"][s][attr].get(value, 0) for s in splits]
            ax.bar(splits, heights, bottom=bottom, label=value)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set(title=f"Speakers by {attr.replace('_', ' ')}", ylabel="speakers")
        ax.legend(fontsize="small")
    written.append(_save(fig, folder / "speakers.png"))

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(list(facts["phone_counts"]), list(facts["phone_counts"].values()))
    ax.set(title="Phone tokens (public splits, canonical)", ylabel="count")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    written.append(_save(fig, folder / "phones.png"))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    # No timestamp in the PNG, so the same facts give the same bytes.
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return path
