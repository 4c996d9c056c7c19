"""Formats as their users expect: HF's `validation` and full card and columns, Kaldi's reco2dur, phone text,
phone list and absolute paths, Lhotse's speaker age band and first language, and the CMUdict/TIMIT-39 phone map."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openphone.kaldi_paths import main as kaldi_paths_main

from speech.phones import INVENTORY, PHONES
from tests.benchmark.conftest import release_root
from tests.benchmark.test_release_formats import validate_kaldi_dir

pytestmark = pytest.mark.django_db


def manifest(root: Path) -> dict[str, dict]:
    return {r["utt_id"]: r for r in map(json.loads, (root / "manifest.jsonl").read_text().splitlines())}


def test_kaldi_has_reco2dur_phone_text_a_phone_list_and_absolute_paths_on_request(release, settings, tmp_path):
    root = release_root(settings, release)
    rows = manifest(root)
    for split in ("train", "dev", "test"):
        folder = root / "kaldi" / split
        utt2dur = (folder / "utt2dur").read_text()
        assert (folder / "reco2dur").read_text() == utt2dur  # one recording per utterance, no segments file
        phones = dict(line.split(" ", 1) for line in (folder / "text.phones").read_text().splitlines())
        assert phones.keys() == dict(line.split(" ", 1) for line in (folder / "text").read_text().splitlines()).keys()
        for utt, text in phones.items():
            assert text.split() == [p for word in rows[utt]["phones"] for p in word]
    table = [line.split() for line in (root / "kaldi/lang/phones.txt").read_text().splitlines()]
    assert table[0] == ["<eps>", "0"] and [p for p, _ in table[1:]] == ["sil", *PHONES]
    assert [int(i) for _, i in table] == list(range(len(INVENTORY) + 1))
    assert (root / "kaldi/dict/nonsilence_phones.txt").read_text().split() == list(PHONES)
    assert (root / "kaldi/dict/silence_phones.txt").read_text().split() == ["sil"]
    lexicon = (root / "kaldi/dict/lexicon.txt").read_text().splitlines()
    assert lexicon[0] == "<unk> sil" and all(set(line.split()[1:]) <= set(INVENTORY) for line in lexicon)

    out = tmp_path / "data"
    assert kaldi_paths_main([str(root), str(out), "--split", "dev"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dev", "dict", "lang"]
    scp = (out / "dev" / "wav.scp").read_text().splitlines()
    paths = [line.split()[-2] if line.endswith("|") else line.split(" ", 1)[1] for line in scp]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths)
    assert validate_kaldi_dir(out / "dev") == {u for u, r in rows.items() if r["split"] == "dev"}
    assert kaldi_paths_main([str(tmp_path / "nowhere"), str(out)]) == 1


def test_lhotse_supervisions_carry_age_band_and_first_language(release, settings):
    lhotse = pytest.importorskip("lhotse")
    root = release_root(settings, release)
    rows = manifest(root)
    supervisions = lhotse.load_manifest(root / "lhotse/openphone_supervisions_train.jsonl.gz")
    seen = set()
    for sup in supervisions:
        row = rows[sup.id]
        assert sup.custom["age_band"] == row["age_band"] and sup.custom["first_language"] == row["first_language"]
        assert sup.custom["source"] == "openphone" and sup.gender == row["gender"]
        seen.add(sup.custom["age_band"])
    assert seen - {""}  # some age bands are published (the corpus has groups of 5 speakers or more)


def test_hf_names_dev_validation_every_way_and_has_a_full_card_and_columns(release, settings, tmp_path):
    datasets = pytest.importorskip("datasets")
    yaml = pytest.importorskip("yaml")
    root = release_root(settings, release)
    rows = manifest(root)
    cache = str(tmp_path / "hf-cache")
    ways = {
        "release root (its README card)": datasets.load_dataset(str(root), cache_dir=cache),
        "hf/ (its card)": datasets.load_dataset(str(root / "hf"), cache_dir=cache),
        "parquet data_dir": datasets.load_dataset("parquet", data_dir=str(root / "hf" / "data"), cache_dir=cache),
    }
    for way, data in ways.items():
        assert set(data) == {"train", "validation", "test"}, way
    data = ways["release root (its README card)"]
    validation = data["validation"]
    assert isinstance(validation.features["audio"], datasets.Audio)
    columns = {"age_band", "first_language", "prompt_type", "votes_counted", "votes_valid", "source", "licence"}
    assert columns <= set(validation.column_names)
    assert validation.features["votes_counted"] == datasets.Value("int32")
    table = validation.remove_columns("audio")
    for record in table:
        row = rows[record["id"]]
        assert row["split"] == "dev"
        for column, field in [("age_band", "age_band"), ("first_language", "first_language"),
                              ("prompt_type", "prompt_type"), ("votes_counted", "votes_counted"),
                              ("votes_valid", "votes_valid_counted"), ("licence", "licence")]:  # fmt: skip
            assert record[column] == row[field], column

    card = yaml.safe_load((root / "hf" / "README.md").read_text().split("---\n")[1])
    assert card["task_categories"] == ["automatic-speech-recognition"] and card["language"] == ["en"]
    assert card["size_categories"] == ["n<1K"] and card["license"] == "cc0-1.0"
    info = card["dataset_info"]
    assert [f["name"] for f in info["features"]] == list(validation.features)
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {k: len(v) for k, v in data.items()}
    assert [c["split"] for c in card["configs"][0]["data_files"]] == ["train", "validation", "test"]


def test_the_datasheet_publishes_the_timit39_map_and_how_to_compare(release, settings):
    root = release_root(settings, release)
    lines = [line.split("\t") for line in (root / "phone_map_timit39.tsv").read_text().splitlines()]
    assert lines[0] == ["cmudict39", "timit39", "note"]
    mapping = {c: t for c, t, _ in lines[1:]}
    assert list(mapping) == list(INVENTORY)
    assert mapping["AO"] == "aa" and mapping["ZH"] == "sh" and mapping["sil"] == "sil"
    assert len(set(mapping.values()) - {"sil"}) == 37  # the two folds: 39 CMUdict phones onto 37 TIMIT-39 classes
    readme = (root / "README.md").read_text()
    assert "## The 39 phones and TIMIT's 39" in readme and "**How to compare.**" in readme
    assert "not the 39 classes TIMIT results are reported in" in readme and "Lee & Hon" in readme
