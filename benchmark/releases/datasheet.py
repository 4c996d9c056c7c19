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

from benchmark.releases.exports import ReleaseEntry, scored_entries
from contributors.services.prompt_selection import DIPHONES_POSSIBLE, diphones_of
from core.licences import CC0, licence_get
from speech.phones import PHONES, SILENCE
from speech.splits import SPLITS

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
    sources: Mapping[str, Mapping[str, str]] | None = None,
    invalid_reasons: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The datasheet's numbers for every split (hidden included, as counts only). ``hidden`` describes the hidden
    split (formed or not, and why) as the release builder decided it; ``sources`` each imported corpus's licence,
    URL and citation by name (see ``source_facts``); ``invalid_reasons`` the platform's "invalid" votes by reason
    (``unstated`` for votes cast before reasons were asked), over all clips, released or not."""
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
    source_rows = source_facts(public, sources or {}, version=version)
    return {
        "version": version,
        # An SPDX expression: each source's clips are under its own licence (see "sources").
        "licence": " AND ".join(dict.fromkeys(row["licence"] for row in source_rows)) or CC0.spdx,
        "sources": source_rows,
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
            "invalid_reasons": dict(invalid_reasons or {}),
        },
        "trust": dict(trust),
        "aligned_clips": sum(1 for e in public if e.alignment),
        "durations_s": {s: [round(e.duration_s, 2) for e in grouped.get(s, [])] for s in SPLITS if s != "hidden"},
        "duration_quantiles": {
            **{s: duration_quantiles([e.duration_s for e in grouped.get(s, [])]) for s in SPLITS if s != "hidden"},
            "all public": duration_quantiles([e.duration_s for e in public]),
        },
    }


DURATION_QUANTILES = (("min", 0), ("p10", 10), ("p25", 25), ("median", 50), ("p75", 75), ("p90", 90), ("max", 100))


def duration_quantiles(durations: Sequence[float]) -> dict[str, float]:
    """Clip durations in seconds: count, mean and the quantiles of DURATION_QUANTILES, each a linear interpolation
    between the two nearest ranks (numpy's default, R's type 7), to 0.01 s. An empty split has only its count."""
    ordered = sorted(durations)
    if not ordered:
        return {"clips": 0}
    out: dict[str, float] = {"clips": len(ordered), "mean": round(statistics.fmean(ordered), 2)}
    for name, percent in DURATION_QUANTILES:
        rank = (len(ordered) - 1) * percent / 100
        low = int(rank)
        high = min(low + 1, len(ordered) - 1)
        out[name] = round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 2)
    return out


def _durations_section(facts: Mapping[str, Any]) -> list[str]:
    """The durations as a table of quantiles per split: each split read on its own scale, which a histogram of
    every split on one axis did not give (dev and test vanished beside train)."""
    quantiles = facts.get("duration_quantiles") or {}
    names = [name for name, _ in DURATION_QUANTILES]
    rows = [[split, q["clips"], *(q.get(n, "") for n in names), q.get("mean", "")] for split, q in quantiles.items()]
    if not rows:
        return []
    return [
        "### Clip durations (seconds)",
        "",
        _table(rows, ["split", "clips", *names, "mean"]),
        "",
        "Quantiles interpolate between the two nearest clips (numpy's default). `plots/durations.png` draws each "
        "split's histogram on its own axis.",
        "",
    ]


PLATFORM_SOURCE = "openphone"  # contributors.models.PLATFORM_SOURCE: clips recorded on the platform


def source_facts(
    entries: Sequence[ReleaseEntry], sources: Mapping[str, Mapping[str, str]], *, version: str
) -> list[dict[str, Any]]:
    """One row per source of the published clips: the platform's own recordings (CC0) first, then each imported
    corpus by name, with its licence (SPDX id, name, legal text), URL, citation and its clips, speakers and hours
    in this release."""
    grouped: dict[str, list[ReleaseEntry]] = defaultdict(list)
    for e in entries:
        grouped[e.source or PLATFORM_SOURCE].append(e)
    rows = []
    for name in sorted(grouped, key=lambda n: (n != PLATFORM_SOURCE, n)):
        items = grouped[name]
        if name == PLATFORM_SOURCE:
            detail = {"licence": CC0.spdx, "url": "", "citation": ""}  # the release's own entry: see _citations
        else:
            detail = dict(sources.get(name) or {"licence": items[0].licence, "url": "", "citation": ""})
        licence = licence_get(detail["licence"])
        rows.append(
            {
                "name": name,
                "platform": name == PLATFORM_SOURCE,
                "licence": licence.spdx,
                "licence_name": licence.name,
                "licence_url": licence.url,
                "licence_hf": licence.hf,
                "attribution": licence.attribution,
                "share_alike": licence.share_alike,
                "url": detail.get("url", ""),
                "citation": detail.get("citation", ""),
                "clips": len(items),
                "speakers": len({e.speaker_id for e in items}),
                "hours": round(sum(e.duration_s for e in items) / 3600, 3),
            }
        )
    return rows


def _source_label(row: Mapping[str, Any]) -> str:
    return "recorded on the platform" if row["platform"] else row["name"]


def _sources_section(facts: Mapping[str, Any]) -> list[str]:
    rows = facts.get("sources") or []
    table = _table(
        [
            [
                _source_label(r),
                f"[{r['licence']}]({r['licence_url']})",
                r["clips"],
                r["speakers"],
                r["hours"],
                f"<{r['url']}>" if r["url"] else "",
            ]
            for r in rows
        ],
        ["source", "licence", "clips", "speakers", "hours", "published at"],
    )
    return [
        "## Licences and sources",
        "",
        "Each clip is published under the licence of its source (`source` and `licence` in `manifest.jsonl`, the "
        "Parquet columns and Lhotse's `custom`). **CC0 1.0 covers only the clips recorded on the platform**, whose "
        "contributors dedicated them to the public domain before recording; an imported corpus keeps its own "
        "licence, and where that licence asks for attribution, reusing its clips means crediting it as under "
        '"How to cite". `LICENSE` has the terms per source.',
        "",
        table,
        "",
        "Imported clips were re-encoded to 16 kHz mono 16-bit FLAC (or WAV) and their transcripts normalised and "
        "given canonical CMUdict phones; nothing else was changed.",
        "",
    ]


def render_licence(facts: Mapping[str, Any]) -> str:
    """The release's LICENSE: the terms of each source's clips, with what attribution each one asks for."""
    parts = [
        f"OpenPhone {facts['version']}: licences by source",
        "",
        "The clips of this release come from more than one source, and each clip is under its source's licence:",
        "the `source` and `licence` fields of manifest.jsonl (and the same columns in hf/, Lhotse's `custom`) say",
        "which applies to which clip. The metadata, transcriptions and documentation written by the platform are",
        "dedicated to the public domain under CC0 1.0 as far as they are not part of a source's work.",
        "",
    ]
    for row in facts.get("sources") or []:
        title = "Recordings made on the OpenPhone platform" if row["platform"] else f"{row['name']} (imported corpus)"
        parts += [f"== {title}: {row['clips']} clips, {row['speakers']} speakers ==", ""]
        parts.append(f"Licence: {row['licence_name']} ({row['licence']}), {row['licence_url']}")
        if row["url"]:
            parts.append(f"Source: {row['url']}")
        if row["platform"]:
            parts.append(
                "Every contributor dedicated their recordings to the public domain before recording: no attribution "
                "is required."
            )
        elif row["attribution"]:
            parts.append(
                "Attribution is required: credit the corpus as below, link the licence, and say that its audio was "
                "re-encoded to 16 kHz FLAC/WAV and its transcripts normalised."
                + (" Adaptations must be shared under the same licence." if row["share_alike"] else "")
            )
        if row["citation"] and not row["platform"]:
            parts += ["", "Cite as:", "", row["citation"].strip()]
        parts.append("")
    return "\n".join(parts) + "\n"


def _citations(facts: Mapping[str, Any], *, version: str, year: str) -> str:
    """The platform's entry and, after it, every imported source's own, as each asks to be cited."""
    entries = [CITATION.format(version=version, year=year)]
    entries += [r["citation"].strip() for r in facts.get("sources") or [] if not r["platform"] and r["citation"]]
    return "\n\n".join(entries)


def hf_card_body(facts: Mapping[str, Any], *, created: str) -> str:
    """The text under ``hf/README.md``'s YAML header: what the data is, how it loads, its licences and citations."""
    version = facts["version"]
    rows = [[_source_label(r), r["licence"], r["clips"], r["hours"]] for r in facts.get("sources") or []]
    return "\n".join(
        [
            f"# OpenPhone {version}",
            "",
            "Read English speech recorded by volunteers in the browser and validated by trusted volunteers, with "
            "word and canonical phone (CMUdict ARPAbet, no stress) transcriptions: a TIMIT-like corpus for phone "
            "recognition. 16 kHz mono; the dev split is `validation` here.",
            "",
            "```python",
            "from datasets import load_dataset",
            'data = load_dataset("path/to/this/folder")  # train / validation / test, as present',
            "```",
            "",
            "Columns: `id`, `audio`, `speaker_id`, `text` (normalised words), `prompt` (as shown), `phones`, "
            "`gender`, `age_group`, `age_band`, `accent`, `first_language` (empty: not given or withheld for a "
            "group under the minimum size), `prompt_type` (`shared` prompts are read by everyone, as TIMIT's SA), "
            "`votes_counted` and `votes_valid` (trustee votes), `score` (their Wilson lower bound), `source` and "
            "`licence` (per clip), `duration_s`.",
            "",
            "## Licences",
            "",
            _table(rows, ["source", "licence", "clips", "hours"]),
            "",
            "CC0 covers only the clips recorded on the platform; see `LICENSE` and the datasheet (`README.md` at the "
            "release root) for each source's terms.",
            "",
            "## Citation",
            "",
            "```bibtex",
            _citations(facts, version=version, year=created[:4]),
            "```",
            "",
        ]
    )


# The release's 39 phones are CMUdict's ARPAbet without stress; TIMIT-39 is Lee & Hon's (1989) folding of TIMIT's 61
# hand labels. CMUdict phone -> TIMIT-39 class, and why where they differ.
TIMIT39_MAP: tuple[tuple[str, str, str], ...] = (
    ("AA", "aa", ""),
    ("AE", "ae", ""),
    ("AH", "ah", "TIMIT-39 ah also holds ax and ax-h; CMUdict writes unstressed schwa AH0, stress removed here"),
    ("AO", "aa", "TIMIT-39 folds ao into aa; CMUdict keeps AO apart"),
    ("AW", "aw", ""),
    ("AY", "ay", ""),
    ("B", "b", "TIMIT labels the closure bcl apart (folded into sil); CMUdict has the stop only"),
    ("CH", "ch", ""),
    ("D", "d", "TIMIT labels dcl apart, and flapped d as dx"),
    ("DH", "dh", ""),
    ("EH", "eh", ""),
    ("ER", "er", "TIMIT-39 er also holds axr"),
    ("EY", "ey", ""),
    ("F", "f", ""),
    ("G", "g", "TIMIT labels gcl apart"),
    ("HH", "hh", "TIMIT-39 hh also holds hv"),
    ("IH", "ih", "TIMIT-39 ih also holds ix (reduced vowels CMUdict often writes AH0)"),
    ("IY", "iy", ""),
    ("JH", "jh", ""),
    ("K", "k", "TIMIT labels kcl apart"),
    ("L", "l", "TIMIT-39 l also holds el (syllabic l, which CMUdict writes AH0 L)"),
    ("M", "m", "TIMIT-39 m also holds em"),
    ("N", "n", "TIMIT-39 n also holds en and nx"),
    ("NG", "ng", "TIMIT-39 ng also holds eng"),
    ("OW", "ow", ""),
    ("OY", "oy", ""),
    ("P", "p", "TIMIT labels pcl apart"),
    ("R", "r", ""),
    ("S", "s", ""),
    ("SH", "sh", ""),
    ("T", "t", "TIMIT labels tcl apart, and flapped t as dx"),
    ("TH", "th", ""),
    ("UH", "uh", ""),
    ("UW", "uw", "TIMIT-39 uw also holds ux"),
    ("V", "v", ""),
    ("W", "w", ""),
    ("Y", "y", ""),
    ("Z", "z", ""),
    ("ZH", "sh", "TIMIT-39 folds zh into sh; CMUdict keeps ZH apart"),
    (SILENCE, "sil", "TIMIT-39 sil also holds the closures, pau, epi and h#; q (glottal stop) is deleted"),
)


def phone_map_tsv() -> str:
    """``phone_map_timit39.tsv``: the map as a table a scoring script reads."""
    return "cmudict39\ttimit39\tnote\n" + "".join(f"{c}\t{t}\t{n}\n" for c, t, n in TIMIT39_MAP)


def _phone_map_section() -> list[str]:
    rows = [[f"`{c}`", f"`{t}`", n] for c, t, n in TIMIT39_MAP if n]
    same = ", ".join(f"{c}→{t}" for c, t, n in TIMIT39_MAP if not n)
    return [
        "## The 39 phones and TIMIT's 39",
        "",
        "This release's 39 phones are **CMUdict's ARPAbet without stress** (`phones.txt`, plus `sil`), not the 39 "
        "classes TIMIT results are reported in, which are Lee & Hon's (1989) folding of TIMIT's 61 hand labels. "
        "The two sets share 37 phones; CMUdict keeps `AO`/`AA` and `ZH`/`SH` apart where TIMIT-39 merges them, and "
        "has no flap `dx` (CMUdict writes a flapped t or d as `T` or `D`). `phone_map_timit39.tsv` is the map "
        "(CMUdict → TIMIT-39); the same without a note: " + same + ".",
        "",
        _table(rows, ["CMUdict", "TIMIT-39", "what differs"]),
        "",
        "**How to compare.** A phone error rate on this release is not a TIMIT PER. To put a system trained on "
        "TIMIT and one trained here on one scale, map both outputs and references into the 37-class intersection: "
        "CMUdict through `phone_map_timit39.tsv`, TIMIT-39 with `dx` scored as `t` (or dropped from both sides), "
        "and silence removed from both, as TIMIT's scoring does. Even then the references differ in kind: TIMIT's "
        "are narrow transcriptions of what each speaker said (reductions, flaps, deletions), this release's are "
        "the dictionary pronunciations of the prompt, so a recogniser that hears a reduced vowel is scored wrong "
        "here and right on TIMIT. Compare systems on the same corpus; quote cross-corpus numbers with the map "
        "and this caveat.",
        "",
    ]


def _table(rows: list[list[Any]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


CITATION = """@misc{{openphone-{version},
  title  = {{OpenPhone {version}: an open, crowdsourced TIMIT-like speech corpus}},
  author = {{{{OpenPhone contributors}}}},
  year   = {{{year}}},
  note   = {{Release {version}; per-clip licences: CC0 1.0 for platform recordings, see LICENSE}},
}}"""


INVALID_REASON_LABELS = {  # contributors.models.InvalidReason, in the order the validation page offers them
    "wrong_sentence": "wrong sentence",
    "noise": "noise",
    "cut_off": "cut off",
    "not_speech": "not speech",
    "unstated": "no reason (cast before reasons were asked)",
}


def _invalid_reasons_paragraph(reasons: Mapping[str, int]) -> str:
    """Why trustees voted "invalid": over every invalid vote cast on the platform up to the build, on any clip
    (most of them on clips this release leaves out), not only on the clips released."""
    total = sum(reasons.values())
    if not total:
        return "Invalid votes by reason: none cast on the platform up to this build."
    parts = [f"{label} {reasons[key]}" for key, label in INVALID_REASON_LABELS.items() if reasons.get(key)]
    return (
        f"Invalid votes by reason, over all {total} invalid votes cast on the platform up to this build "
        "(on any clip, released or not; a clip's release needs its votes to be mostly valid): " + ", ".join(parts) + "."
    )


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


def _timit_formats(facts: Mapping[str, Any]) -> list[str]:
    """The TIMIT tree's entries in the Formats list."""
    audio = (facts.get("options") or {}).get("audio_format", "wav").upper()
    lhotse = (
        '`lhotse.recipes.prepare_timit("timit", num_phones=60)`'
        if audio == "WAV"
        else "Lhotse's `prepare_timit` (it looks for `.WAV`; this release has `.FLAC`: use `lhotse/` instead)"
    )
    return [
        f"- `timit/data/TRAIN|TEST/DR<n>/<SPEAKER>/<UTT>.{audio}` "
        + ("(RIFF PCM, 16 kHz, 16-bit) " if audio == "WAV" else "(FLAC, 16 kHz, 16-bit) ")
        + "with `.TXT` (`0 N prompt`), `.WRD` and `.PHN` (`start end label`, in samples), as LDC's TIMIT: "
        + lhotse
        + " reads `timit/` (Kaldi's timit recipe finds the files under `timit/data`; its `sph2pipe` step expects "
        "NIST SPHERE, these are RIFF). Speakers are the sex "
        "(`M`, `F`, `X` for other, not given or withheld) and the speaker id in capitals (`spk-ab2cd3ef` is "
        "`MAB2CD3EF`); `DR<n>` is the published accent (`timit/data/DOC/DIALECTS.TXT`, 0: not given or withheld); "
        "utterances are the sentence type and the prompt number: `SA` read by everyone (the recipes leave them "
        "out of scoring, as the leaderboard does), `SX` chosen for phone coverage, `SI` diverse.",
        "- TIMIT has no dev set: **dev and test speakers are both under `TEST/`**, as TIMIT's own dev set is taken "
        "from its test speakers; `timit/data/DOC/dev_spk.list` and `test_spk.list` name them in the shape of "
        "Kaldi's `conf/*_spk.list` (replace TIMIT's lists with these, or Lhotse's `get_speakers`). "
        "`timit/data/DOC/SPKRINFO.TXT` is the speaker table in TIMIT's shape (its comments give the manifest's "
        "speaker id, split, age band and first language), `TIMITDIC.TXT` the pronunciations.",
        "- `timit/nltk/`: the same labels in the flat lower-case layout of NLTK's `TimitCorpusReader` "
        "(`dr<n>-<speaker>/<utt>.txt|wrd|phn`, `spkrinfo.txt`, `timitdic.txt`); its audio is the tree's.",
    ]


def _aligner(alignment: Mapping[str, Any]) -> str:
    """The model that aligned the release and where it started, as a sentence's end."""
    source = alignment.get("initialised_from")
    here = f"{alignment['em_passes']} EM passes over {alignment['train_clips']} of this release's train clips"
    if not source:  # releases built before the aligner started from earlier models say only "model"
        return (
            f"{alignment['model']}, trained from a flat start ({here})."
            if "em_passes" in alignment
            else (f"{alignment['model']}.")
        )
    origin = f"release {source['name']}" if source["kind"] == "release" else f"training run {source['name']}"
    return f"{alignment['model']}: the HMM of {origin}, re-estimated here ({here.replace('EM', 'Viterbi EM')})."


def _aligner_accuracy(alignment: Mapping[str, Any]) -> str:
    """Its boundary accuracy on espeak-ng speech, whose phone times are known: measured on this very model at build
    time, or the recipe's offline figure said to be only that."""
    espeak = alignment.get("espeak") or {
        "measured": "offline",
        "within_20ms": alignment.get("espeak_boundaries_within_20ms"),  # releases built before the build measured
        "mean_abs_error_ms": alignment.get("espeak_mean_abs_error_ms"),
        "reference": alignment.get("espeak_reference"),
    }
    if espeak["measured"] == "build":
        error = "" if espeak["mean_abs_error_ms"] is None else f"mean absolute error {espeak['mean_abs_error_ms']} ms"
        return (
            f"Aligning {espeak['readings']} espeak-ng readings of the demo prompts, whose phone times espeak-ng "
            f"reports, this model (not trained on them) puts **{100 * espeak['within_20ms']:.1f} % of their "
            f"{espeak['boundaries']} phone boundaries within 20 ms**"
            + (f" ({error})" if error else "")
            + (f"; {espeak['unscored']} readings were not scored" if espeak.get("unscored") else "")
            + ". Synthetic speech is not the release's speech: read it as a check on the model, not as the accuracy "
            "of the release's own times."
        )
    return (
        f"This build could not measure its model on espeak-ng speech ({espeak.get('why') or 'not measured'}). "
        "For reference only, and not this model's: the flat-start recipe, trained on 300 espeak-ng readings whose "
        f"phone times are known and aligning them, puts {100 * espeak['within_20ms']:.1f} % of phone boundaries "
        f"within 20 ms (mean absolute error {espeak['mean_abs_error_ms']} ms; {espeak['reference']})."
    )


def _alignment_section(facts: Mapping[str, Any]) -> list[str]:
    """Which model aligned the release, and how well that aligner places boundaries where they are known."""
    alignment = facts.get("alignment") or {}
    if not alignment:
        return []
    lines = ["## Phone and word times", ""]
    if alignment.get("by_hmm"):
        by = _aligner(alignment)
        lines.append(f"{alignment['by_hmm']} clips were aligned while this release was built by a {by}")
        if alignment.get("fallback"):
            reason = alignment["fallback"]
            lines.append(f"({reason[0].upper()}{reason[1:]}; this release's HMM was trained from a flat start.)")
        lines.append(_aligner_accuracy(alignment))
    if alignment.get("supplied"):
        lines.append(
            f"{alignment['supplied']} clips carry the alignments supplied with the build (a training run's "
            "`alignments.jsonl`, the HMM then MLP realignment of `training/ml`)."
        )
    lines += [
        "",
        "Times are forced alignments of the canonical phones, not hand labels: a `.PHN` has what the speaker should "
        "have said, placed where the aligner found it; `.WRD` spans each word's phones. Silence is `h#` at either "
        "end and `pau` between words; the 39 phones are CMUdict's, a subset of TIMIT's 61 labels (no closures, "
        "flaps or reduced vowels).",
        "",
    ]
    return lines


def render_readme(facts: Mapping[str, Any], *, created: str, delta: Mapping[str, Any] | None) -> str:
    """The datasheet as Markdown, placed at the root of the release as README.md."""
    version = facts["version"]
    splits = facts["splits"]
    split_rows = [[s, v["clips"], v["speakers"], v["hours"], v["sentences"]] for s, v in splits.items()]
    parts = [
        f"# OpenPhone {version}",
        "",
        f"Built {created}. Licences: "
        + "; ".join(f"{_source_label(r)}: **{r['licence']}** ({r['clips']} clips)" for r in facts.get("sources") or [])
        + ". CC0 covers only the clips recorded on the platform; each imported corpus keeps its own licence "
        "(see Licences and sources).",
        "",
        *_sources_section(facts),
        "## Contents",
        "",
        _table(split_rows, ["split", "clips", "speakers", "hours", "sentences"]),
        "",
        "Splits are speaker-disjoint. `hidden` is never published: its audio and labels stay on the platform and "
        "score the leaderboard; only its counts appear here. A speaker keeps their split in every later release.",
        "",
        *_durations_section(facts),
        _hidden_paragraph(facts),
        "",
        "## Formats",
        "",
        "All exports were written from one frozen manifest, `manifest.jsonl` (one JSON object per clip).",
        "",
        *_timit_formats(facts),
        "- `kaldi/SPLIT/`: `wav.scp` (paths relative to the release root: run Kaldi from here, or write a copy with "
        "absolute paths with `python -m openphone.kaldi_paths RELEASE_ROOT OUT_DIR`), `text` (words), `text.phones` "
        "(canonical phones: copy it over `text` to train or score a phone recogniser), `utt2spk`, `spk2utt`, "
        "`utt2dur`, `reco2dur`, `spk2gender` where every gender is published. `kaldi/dict/` is the input of "
        "`utils/prepare_lang.sh` (lexicon, silence and non-silence phones), `kaldi/lang/phones.txt` the phone "
        "symbol table.",
        "- `lhotse/openphone_{recordings,supervisions}_SPLIT.jsonl.gz`: load with `lhotse.load_manifest(...)` and "
        "call `.with_path_prefix(RELEASE_ROOT)`; supervisions carry gender and, in `custom`, the age band, first "
        "language, canonical phones and source.",
        "- `hf/data/{train,validation,test}-*.parquet` (dev is `validation` there, as on the Hub): "
        '`datasets.load_dataset(RELEASE_ROOT)` reads this README\'s card, as does `load_dataset("RELEASE_ROOT/hf")` '
        'and `load_dataset("parquet", data_dir="RELEASE_ROOT/hf/data")`; `audio` holds the clip\'s FLAC (lossless, '
        "the samples of the TIMIT tree's file) and `UTT_ID.flac`, with age band, first language, prompt type, "
        "votes, source and licence as columns.",
        "- `phones.txt` (the 39 phones and silence), `lexicon.txt` (the pronunciations used), `datasheet.json`, "
        "`DELTA.json`, `phone_map_timit39.tsv`, `SHA256SUMS` (every file and the tars: `sha256sum -c SHA256SUMS`, with "
        "`--ignore-missing` where you fetched only part).",
        "- `packages/`: the whole release as one tar and each split as its own. Each tar stands alone: it unpacks "
        "into its own folder with a `SHA256SUMS` of exactly its files (`sha256sum -c SHA256SUMS` there), this "
        "datasheet and a dataset card naming only its splits, so `load_dataset` works on it.",
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
        *_phone_map_section(),
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
        "Provenance: "
        + ", ".join(f"{_source_label(r)} {r['clips']}" for r in facts.get("sources") or [])
        + " public clips (imported clips carry their corpus's own validation).",
        "",
        _invalid_reasons_paragraph(votes.get("invalid_reasons") or {}),
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
    parts += [
        *_alignment_section(facts),
        "## Known limitations",
        "",
        "- Canonical pronunciations, not what each speaker actually said; accents and errors are not transcribed.",
        "- Crowd validation can err; demographics are self-reported and optional.",
        "- Imported corpora may dominate some groups (for example non-native speakers of one first language).",
        "",
        "## How to cite",
        "",
        "Cite the release and, for the clips of each imported corpus you use, that corpus as it asks:",
        "",
        "```bibtex",
        _citations(facts, version=version, year=created[:4]),
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

    # One panel per split, each with its own count axis and the same bins: on one shared axis the train split's
    # counts flattened dev and test to nothing.
    present = {split: d for split, d in facts["durations_s"].items() if d}
    everything = [d for durations in present.values() for d in durations]
    low, high = (min(everything), max(everything)) if everything else (0.0, 1.0)
    bins = [low + (high - low) * i / 30 for i in range(31)] if high > low else 30
    fig, axes = plt.subplots(max(len(present), 1), 1, figsize=(7, 1.2 + 1.6 * max(len(present), 1)), sharex=True)
    axes = list(axes) if len(present) > 1 else [axes]
    for ax, (split, durations) in zip(axes, present.items(), strict=False):
        ax.hist(durations, bins=bins, color="#4c72b0")
        ax.set_ylabel(f"{split}\nclips")
    axes[0].set_title(f"Clip durations per split, release {facts['version']}")
    axes[-1].set_xlabel("clip duration (s)")
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
