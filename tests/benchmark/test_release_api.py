"""The releases API and pages: listing, detail, file listings, downloads with Range and ETag, hidden split."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import requests
from openphone import download as cli
from rest_framework.test import APIClient

from benchmark.models import Release
from benchmark.releases.exports import timit_speaker_name
from benchmark.releases.selectors import release_hidden_entries
from benchmark.releases.services import release_create
from tests.benchmark.conftest import build, make_corpus, release_root

pytestmark = pytest.mark.django_db


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_list_and_detail_show_ready_releases_only(release, anon, corpus):
    release_create(version="v2")  # still building: not listed
    response = anon.get("/api/v1/releases/")
    assert response.status_code == 200
    assert [r["version"] for r in response.json()["results"]] == ["v1"]
    detail = anon.get("/api/v1/releases/v1/").json()
    assert detail["clip_count"] == release.clip_count and detail["datasheet"]["licence"] == "CC0-1.0"
    assert detail["manifest_url"].endswith("/api/v1/releases/v1/files/manifest.jsonl")
    assert "manifest.jsonl" in detail["checksums"]
    assert {p["path"] for p in detail["packages"]} >= {"packages/openphone-v1.tar", "packages/openphone-v1-train.tar"}
    assert anon.get("/api/v1/releases/v2/").json()["code"] == "release_unknown"
    assert anon.get("/api/v1/releases/nope/").status_code == 404


def test_file_listing_filters_by_split_and_format_and_refuses_unknown_ones(release, anon):
    response = anon.get("/api/v1/releases/v1/files", {"split": "dev", "format": "kaldi"})
    assert response.status_code == 200, response.content
    files = response.json()["results"]
    assert {f["path"] for f in files} >= {"kaldi/dev/text", "kaldi/dev/wav.scp"}
    assert all(f["split"] == "dev" for f in files)
    for query, code in [({"split": "hidden"}, "split_unknown"), ({"format": "mp3"}, "format_unknown")]:
        response = anon.get("/api/v1/releases/v1/files", query)
        assert response.status_code == 400 and response.json()["code"] == code


def test_download_is_anonymous_with_etag_range_and_416(release, anon, settings):
    root = release_root(settings, release)
    url = "/api/v1/releases/v1/files/manifest.jsonl"
    data = (root / "manifest.jsonl").read_bytes()
    response = anon.get(url)
    assert response.status_code == 200 and body(response) == data
    etag = response["ETag"]
    assert etag == f'"{hashlib.sha256(data).hexdigest()}"' and response["Accept-Ranges"] == "bytes"
    assert anon.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    part = anon.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and body(part) == data[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert body(anon.get(url, HTTP_RANGE="bytes=-5")) == data[-5:]
    stale = anon.get(url, HTTP_RANGE="bytes=10-19", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200 and body(stale) == data  # If-Range mismatch: the whole file
    huge = "9" * 5000  # more digits than Python's int() takes: never a 500
    for bad in [f"bytes={len(data)}-", "bytes=5-2", "bytes=abc", f"bytes={huge}-"]:
        refused = anon.get(url, HTTP_RANGE=bad)
        assert refused.status_code == 416, bad
        assert refused.json()["code"] in ("range_invalid", "range_not_satisfiable")
        assert refused["Content-Range"] == f"bytes */{len(data)}"
    # Another unit must be ignored (RFC 9110, section 14.2), and several ranges may be: the whole file.
    for ignored in ["lines=1-2", "items=0-5", "bytes=0-1,4-5"]:
        whole = anon.get(url, HTTP_RANGE=ignored)
        assert whole.status_code == 200 and body(whole) == data, ignored
    # A last position past the end means "to the end", however many digits it has.
    for to_the_end in [f"bytes=10-{len(data) + 100}", f"bytes=10-{huge}"]:
        rest = anon.get(url, HTTP_RANGE=to_the_end)
        assert rest.status_code == 206 and body(rest) == data[10:]
        assert rest["Content-Range"] == f"bytes 10-{len(data) - 1}/{len(data)}"
    assert anon.get("/api/v1/releases/v1/files/nope.txt").json()["code"] == "file_unknown"


def test_hidden_split_audio_and_labels_are_unreachable(release, anon, settings, client):
    hidden = release_hidden_entries(release=release)
    assert hidden
    private = Path(settings.MEDIA_ROOT) / release.private_prefix
    assert (private / hidden[0].audio).is_file()
    tries = [
        f"/api/v1/releases/v1/files/{hidden[0].audio}",
        "/api/v1/releases/v1/files/hidden/manifest.jsonl",
        f"/api/v1/releases/v1/files/../../{release.private_prefix}/hidden/manifest.jsonl",
        f"/api/v1/releases/v1/files/%2e%2e/%2e%2e/{release.private_prefix}/{hidden[0].audio}",
        f"/api/v1/releases/v1/files/timit/data/TEST/DR0/{timit_speaker_name(hidden[0].speaker_id, '')}/SI1.WAV",
        f"/media/{release.private_prefix}/{hidden[0].audio}",
        f"/{release.private_prefix}/{hidden[0].audio}",
        f"/releases/v1/{hidden[0].audio}",
    ]
    for url in tries:
        assert anon.get(url).status_code == 404, url
    listing = anon.get("/api/v1/releases/v1/files").json()["results"]
    detail = anon.get("/api/v1/releases/v1/").content
    text = detail + str(listing).encode() + client.get("/releases/v1/").content
    for entry in hidden:
        assert entry.utt_id.encode() not in text and entry.speaker_id.encode() not in text
    tar = anon.get("/api/v1/releases/v1/files/packages/openphone-v1.tar")
    with tarfile.open(fileobj=io.BytesIO(body(tar))) as archive:
        names = archive.getnames()
    assert not any(entry.utt_id in n for entry in hidden for n in names)


def test_pages_list_releases_and_show_the_datasheet(release, client):
    page = client.get("/releases/")
    assert page.status_code == 200 and b"v1" in page.content
    detail = client.get("/releases/v1/")
    assert detail.status_code == 200
    for text in [b"CC0", b"openphone-v1.tar", b"diphones", b"plots/speakers.png", b"withheld"]:
        assert text in detail.content
    assert client.get("/releases/nope/").status_code == 404
    assert b'href="/releases/v1/datasheet/"' in detail.content


def test_the_datasheet_renders_as_a_page(release, client, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        page = client.get("/releases/v1/datasheet/")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "<h1>OpenPhone v1</h1>" in html and "<table>" in html
    assert "pretty_name:" not in html  # the Hub's YAML header is left out
    assert 'href="/api/v1/releases/v1/files/README.md"' in html  # the file is still one click away
    assert client.get("/releases/nope/datasheet/").status_code == 404


def test_the_datasheet_page_sanitises_what_the_markdown_carries():
    from benchmark.views import render_datasheet

    html = render_datasheet(
        "---\nlicense: cc0-1.0\n---\n# T\n\nAccent <script>alert(1)</script> <img src=x onerror=alert(1)> "
        "[x](javascript:alert(1)) Québécois\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert "Québécois" in html and "<td>1</td>" in html and "license:" not in html


def test_downloads_are_rate_limited(release, anon, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"downloads": "3/min"})
    codes = [anon.get("/api/v1/releases/v1/files/LICENSE").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert anon.get("/api/v1/releases/v1/files/LICENSE").json()["code"] == "throttled"


@pytest.mark.django_db(transaction=True)
def test_interrupted_download_resumes_against_the_live_server(live_server, settings, tmp_path, capsys):
    make_corpus(speakers=12, clips_each=2)
    release = build("live")
    package = Release.objects.get(pk=release.pk).files.get(path="packages/openphone-live.tar")
    original = (release_root(settings, release) / package.path).read_bytes()
    url = f"{live_server.url}/api/v1/releases/live/files/{package.path}"

    # A real client stops half-way through the body...
    half = len(original) // 2
    dest = tmp_path / "dl"
    part = dest / "packages" / "openphone-live.tar.part"
    part.parent.mkdir(parents=True)
    with requests.get(url, stream=True, timeout=30) as response, part.open("wb") as sink:
        assert response.status_code == 200
        for chunk in response.iter_content(8192):
            sink.write(chunk)
            if sink.tell() >= half:
                break
    # ... and asks for the rest with a Range header guarded by the ETag.
    have = part.stat().st_size
    rest = requests.get(url, headers={"Range": f"bytes={have}-", "If-Range": f'"{package.sha256}"'}, timeout=30)
    assert (
        rest.status_code == 206 and rest.headers["Content-Range"] == f"bytes {have}-{len(original) - 1}/{len(original)}"
    )
    assert part.read_bytes() + rest.content == original

    # The CLI finishes the same interrupted file, verifies it, and then leaves it alone.
    part.write_bytes(original[:half])
    assert cli.main(["live", str(dest), "--server", live_server.url, "--quiet"]) == 0
    assert (dest / "packages" / "openphone-live.tar").read_bytes() == original
    assert "1 resumed" in capsys.readouterr().out
    assert cli.main(["live", str(dest), "--server", live_server.url, "--quiet"]) == 0
    assert "1 present" in capsys.readouterr().out
    assert (
        cli.main(["live", str(dest), "--server", live_server.url, "--format", "kaldi", "--split", "dev", "--quiet"])
        == 0
    )
    assert (dest / "kaldi" / "dev" / "text").exists()
    # A corrupted partial file fails its checksum once resumed, and is fetched again from the start.
    text = dest / "kaldi" / "dev" / "text"
    text.unlink()
    text.with_name("text.part").write_bytes(b"garbage")
    assert cli.main(["live", str(dest), "--server", live_server.url, "--format", "kaldi", "--split", "dev"]) == 0
    assert "fetching it again from the start" in capsys.readouterr().err
    assert hashlib.sha256(text.read_bytes()).hexdigest() == release.files.get(path="kaldi/dev/text").sha256
    # Bytes that never match (here: the stored file changed under its row) fail, and the partial file is removed;
    # unknown releases are a sentence, not a trace.
    text.unlink()
    stored = release_root(settings, release) / "kaldi" / "dev" / "text"
    stored.write_bytes(b"#" + stored.read_bytes()[1:])
    assert cli.main(["live", str(dest), "--server", live_server.url, "--format", "kaldi", "--split", "dev"]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert not text.with_name("text.part").exists()
    assert cli.main(["nope", str(dest), "--server", live_server.url]) == 1
    assert "no published release" in capsys.readouterr().err
