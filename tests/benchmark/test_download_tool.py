"""The download tool finishes: it waits out 429s, fetches a split through its tar (resuming it), replaces damaged
files and says so, refuses a split of a release-wide format and a missing server with a sentence; the server
throttles release files by bytes, not by their number."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import urllib.error
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from openphone import download as cli
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from benchmark.conf import benchmark_settings_check
from benchmark.models import Release
from benchmark.throttling import byte_rate_parse
from tests.benchmark.conftest import build, make_corpus, release_root

live = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """One fake clock for the request and byte throttles and the tool's sleeps: waiting costs no time."""
    now = [1_000_000.0]
    monkeypatch.setattr(ScopedRateThrottle, "timer", staticmethod(lambda: now[0]))
    monkeypatch.setattr("benchmark.throttling.time", SimpleNamespace(time=lambda: now[0]))
    return now


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _published(version: str, **filters) -> list:
    return list(Release.objects.get(version=version).files.filter(**filters).order_by("path"))


@live
def test_the_tool_waits_out_429s_and_finishes(live_server, tmp_path, monkeypatch, clock, capsys):
    make_corpus(speakers=12, clips_each=2)
    build("live")
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"downloads": "3/min"})
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(cli, "_sleep", sleep)
    dest = tmp_path / "dl"
    args = ["live", str(dest), "--server", live_server.url, "--split", "dev", "--format", "kaldi", "--files"]
    assert cli.main(args) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    wanted = _published("live", format="kaldi", split__in=["dev", ""])  # dict/ and lang/ serve every split
    assert len(wanted) >= 4  # more requests than the 3 a minute allowed, so it had to wait
    for row in wanted:
        assert _sha(dest / row.path) == row.sha256
    assert f"{len(wanted)} downloaded" in out
    assert "HTTP 429, Retry-After 60 s" in err
    # The server's Retry-After each time, not a guess (60 s, or what is left of the window: it depends on how many
    # files the split's format has).
    assert slept and all(f"Retry-After {s:.0f} s" in err for s in slept) and 60 in slept


@live
def test_a_split_comes_as_its_tar_resumed_and_damaged_files_are_replaced(
    live_server, settings, tmp_path, monkeypatch, capsys
):
    make_corpus(speakers=12, clips_each=2)
    stored = release_root(settings, build("live"))
    tar = _published("live", path="packages/openphone-live-dev.tar")[0]
    dest = tmp_path / "dl"
    partial = dest / "packages" / "openphone-live-dev.tar.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes((stored / tar.path).read_bytes()[: tar.size // 2])
    requests: list[tuple[str, str | None]] = []
    urlopen = cli._urlopen

    def recording(request):
        url = request if isinstance(request, str) else request.full_url
        requests.append((url, None if isinstance(request, str) else request.get_header("Range")))
        return urlopen(request)

    monkeypatch.setattr(cli, "_urlopen", recording)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # progress must not need it
    args = ["live", str(dest), "--server", live_server.url, "--split", "dev", "--format", "timit"]
    assert cli.main(args) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    wanted = _published("live", format="timit", split__in=["dev", ""])  # with DOC/ and NLTK's shared files
    assert any(row.path == "timit/data/DOC/dev_spk.list" for row in wanted)
    for row in wanted:
        assert _sha(dest / row.path) == row.sha256
    assert f"via packages/openphone-live-dev.tar: {len(wanted)} extracted" in out
    fetched = [(url.split("/files/", 1)[1], rng) for url, rng in requests if "/files/" in url]
    assert fetched == [("packages/openphone-live-dev.tar", f"bytes={tar.size // 2}-")]  # one resumed tar
    assert not (dest / "packages").exists()  # fetched only to carry the split: not left behind
    assert "(100%) packages/openphone-live-dev.tar" in err  # progress without tqdm: a line per file, not a TTY

    # A complete file that no longer matches is re-verified, fetched again, and named.
    damaged = dest / wanted[0].path
    damaged.write_bytes(b"x" * damaged.stat().st_size)
    assert cli.main([*args, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"replaced 1 damaged file: {wanted[0].path}" in out
    assert f"{len(wanted) - 1} present" in out and "downloaded" not in out
    assert _sha(damaged) == wanted[0].sha256

    # A fresh, empty folder: the split's many files come through the tar too, in one request.
    assert tar.size < sum(row.size for row in wanted) + len(wanted) * cli.REQUEST_COST_BYTES
    requests.clear()
    fresh = ["live", str(tmp_path / "fresh"), *args[2:], "--quiet"]
    assert cli.main(fresh) == 0
    assert "via packages/openphone-live-dev.tar" in capsys.readouterr().out
    assert [url for url, _ in requests if "/files/" in url] == [
        f"{live_server.url}/api/v1/releases/live/files/{tar.path}"
    ]
    # ... and that one split is a TIMIT tree NLTK reads (its speakers from spkrinfo.txt, its pronunciations from
    # timitdic.txt: files every split shares). Lhotse's prepare_timit asserts that TRAIN, DEV and TEST all have
    # recordings, so it runs once each split is fetched the same way into the same folder (DEV and TEST are told
    # apart by DOC's speaker lists, shared files too).
    rows = [json.loads(line) for line in (stored / "manifest.jsonl").read_text().splitlines()]
    _nltk_reads([r for r in rows if r["split"] == "dev"], tmp_path / "fresh", monkeypatch)
    for split in ("train", "test"):
        assert cli.main(["live", str(tmp_path / "fresh"), *args[2:4], "--split", split, "--format", "timit"]) == 0
    _lhotse_prepares(rows, tmp_path / "fresh", monkeypatch)


def _timit_place(row: dict) -> tuple[str, str, str]:
    """(DR<n>, speaker, utterance) from the manifest's audio path."""
    *_, region, speaker, file = Path(row["audio"]).parts
    return region, speaker, Path(file).stem


def _spoken(phones: list) -> list[str]:
    return [p.lower() for word in phones for p in word]


def _nltk_reads(rows: list[dict], dest: Path, monkeypatch) -> None:
    import nltk
    from nltk.corpus.reader.timit import TimitCorpusReader
    from nltk.data import FileSystemPathPointer

    view = dest / "timit" / "nltk"
    monkeypatch.setattr(nltk.data, "path", [*nltk.data.path, str(view)])  # NLTK reads only from its data path
    reader = TimitCorpusReader(FileSystemPathPointer(str(view)))
    ids = {r["utt_id"]: "dr{}-{}/{}".format(_timit_place(r)[0][2:], *map(str.lower, _timit_place(r)[1:])) for r in rows}
    assert rows and sorted(reader.utteranceids()) == sorted(ids.values())
    for row in rows:
        utterance = ids[row["utt_id"]]
        assert [w for w, _, _ in reader.word_times(utterance)] == row["words"]
        assert [p for p, _, _ in reader.phone_times(utterance) if p not in ("h#", "pau")] == _spoken(row["phones"])
        info = reader.spkrinfo(utterance.split("/")[0])
        assert f"speaker_id={row['speaker_id']} split={row['split']}" in info.comments
        assert reader.transcription_dict()[row["words"][0]] == _spoken(row["phones"][:1])


def _lhotse_prepares(rows: list[dict], dest: Path, monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "tqdm", raising=False)  # the downloads ran without it; Lhotse needs it
    import lhotse.recipes.timit as timit

    doc = dest / "timit/data/DOC"
    lists = tuple(doc.joinpath(f"{s}_spk.list").read_text().split() for s in ("dev", "test"))
    monkeypatch.setattr(timit, "get_speakers", lambda: lists)  # TIMIT's own speaker lists, by the release's
    parts = timit.prepare_timit(dest / "timit", num_phones=60)
    for part, split in (("TRAIN", "train"), ("DEV", "dev"), ("TEST", "test")):
        supervisions = {s.id: s for s in parts[part]["supervisions"]}
        expected = {"-".join(_timit_place(r)[1:]): r for r in rows if r["split"] == split}
        assert set(supervisions) == set(expected)
        for utterance, row in expected.items():
            sup = supervisions[utterance]
            assert [a.symbol for a in sup.alignment["word"]] == row["words"] and sup.text == row["text"]
            assert [a.symbol for a in sup.alignment["phone"] if a.symbol not in ("h#", "pau")] == _spoken(row["phones"])


@live
def test_a_split_of_a_release_wide_format_is_a_sentence(live_server, tmp_path, capsys):
    make_corpus(speakers=12, clips_each=2)
    build("live")
    args = ["live", str(tmp_path), "--server", live_server.url, "--format", "manifest", "--split", "dev"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "manifest format is release-wide" in err and "without a split" in err
    assert "Traceback" not in err and "has no files" not in err
    response = APIClient().get("/api/v1/releases/live/files", {"format": "manifest", "split": "dev"})
    assert response.status_code == 400 and response.json()["code"] == "format_release_wide"


def test_network_errors_are_retried_with_bounded_exponential_backoff(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(cli, "_sleep", slept.append)
    monkeypatch.setattr(cli.random, "uniform", lambda low, high: high)  # no jitter: the schedule itself
    failures = [ConnectionResetError("reset by peer"), urllib.error.URLError("timed out")]

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "body"

    assert cli._retrying("http://x/f", flaky, lambda note: None) == "body"
    assert slept == [1.0, 2.0]

    def refused(code: int) -> Callable[[], None]:
        def attempt() -> None:
            raise urllib.error.HTTPError("http://x/f", code, "refused", {}, io.BytesIO(b""))  # type: ignore[arg-type]

        return attempt

    slept.clear()
    with pytest.raises(cli.DownloadError, match="after 8 tries"):
        cli._retrying("http://x/f", refused(503), lambda note: None)
    assert slept == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]  # doubling, capped, then a sentence
    slept.clear()
    with pytest.raises(cli.DownloadError, match="HTTP 404"):
        cli._retrying("http://x/f", refused(404), lambda note: None)
    assert slept == []  # not transient: a sentence at once


def test_progress_is_rewritten_in_place_on_a_terminal(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    progress = cli.Progress(total_bytes=2000, total_files=2, enabled=True, stream=terminal)
    for name in ("a.flac", "b.flac"):
        progress.start(name)
        progress.add(1000)
        progress.finish_file()
    progress.close()
    shown = terminal.getvalue()
    assert shown.count("\n") == 1 and shown.count("\r") >= 2  # one line, redrawn
    assert shown.rstrip().endswith("[2/2] 2.0 kB of 2.0 kB (100%) b.flac")


def test_no_server_is_a_sentence_on_how_to_set_one(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENPHONE_SERVER", raising=False)
    monkeypatch.setattr(cli, "_urlopen", lambda request: pytest.fail("no server was given: nothing to ask"))
    assert cli.main(["v1", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--server" in err and "OPENPHONE_SERVER" in err
    monkeypatch.setenv("OPENPHONE_SERVER", "ftp://example.org")
    assert cli.main(["v1", str(tmp_path)]) == 1
    assert "http:// or https://" in capsys.readouterr().err


@pytest.mark.django_db
def test_many_small_files_fit_the_byte_budget_which_is_still_enforced(release, settings, clock):
    small = _published("v1", split="dev", format__in=["timit", "kaldi", "lhotse"])
    anon = APIClient()
    fetches = 700  # more than the old 600 requests a minute
    cost = sum(small[i % len(small)].size for i in range(fetches))
    settings.THROTTLE_DOWNLOAD_BYTES = f"{cost}B/min"
    for i in range(fetches):
        response = anon.get(f"/api/v1/releases/v1/files/{small[i % len(small)].path}")
        assert response.status_code == 200, (i, response.content[:200])
    # The budget is spent to the byte: one more file is still served (a file larger than the whole budget must
    # be downloadable), and it overdraws the budget, so the next request waits.
    tar = _published("v1", path="packages/openphone-v1-dev.tar")[0]
    assert anon.get(f"/api/v1/releases/v1/files/{tar.path}").status_code == 200
    refused = anon.get(f"/api/v1/releases/v1/files/{small[0].path}")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "throttled" and body["message"]
    wait = int(refused["Retry-After"])
    assert wait == body["retry_after_s"] == -(-tar.size * 60 // cost)
    clock[0] += wait
    assert anon.get(f"/api/v1/releases/v1/files/{small[0].path}").status_code == 200
    # HEAD and 304 send no body and cost nothing.
    clock[0] += 3600
    settings.THROTTLE_DOWNLOAD_BYTES = f"{small[0].size}B/min"
    for _ in range(3):
        assert anon.head(f"/api/v1/releases/v1/files/{tar.path}").status_code == 200
        etag = f'"{tar.sha256}"'
        assert anon.get(f"/api/v1/releases/v1/files/{tar.path}", HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("1GB/min", (10**9, 60)), ("500MB/s", (500 * 10**6, 1)), ("10GB/hour", (10**10, 3600)), ("123/min", (123, 60))],
)
def test_byte_rates_read_as_written(rate, parsed):
    assert byte_rate_parse(rate) == parsed


def test_no_byte_rate_is_no_budget_and_a_typo_is_a_system_check_error(settings):
    assert byte_rate_parse("") is None
    settings.THROTTLE_DOWNLOAD_BYTES = "lots"
    assert [e.id for e in benchmark_settings_check()] == ["benchmark.E001"]
