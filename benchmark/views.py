"""Server-rendered release pages (the list and each release's datasheet) and the leaderboard. Thin: reads through
selectors."""

from __future__ import annotations

import markdown
import nh3
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from benchmark.leaderboard.board import leaderboard_board
from benchmark.leaderboard.plot import leaderboard_plot
from benchmark.releases import selectors
from core.errors import ServiceError


def release_list(request: HttpRequest) -> HttpResponse:
    return render(request, "benchmark/release_list.html", {"releases": selectors.releases_public()})


def release_detail(request: HttpRequest, version: str) -> HttpResponse:
    try:
        release = selectors.release_public_get(version=version)
    except ServiceError as exc:
        raise Http404(exc.message) from exc
    facts = release.facts
    attrs = ("gender", "age_group", "age_band", "accent")
    demographics = []
    for attr in attrs:
        values = sorted({v for split in facts["demographics"].values() for v in split[attr]})
        rows = [(split, [facts["demographics"][split][attr].get(v, 0) for v in values]) for split in facts["splits"]]
        demographics.append({"name": attr.replace("_", " "), "values": values, "rows": rows})
    context = {
        "release": release,
        "facts": facts,
        "demographics": demographics,
        "packages": selectors.release_files(release=release, format="package"),
        "plots": selectors.release_files(release=release, format="datasheet").filter(path__startswith="plots/"),
        "files": selectors.release_file_summary(release=release),
        "base": f"/api/v1/releases/{release.version}/files/",
    }
    return render(request, "benchmark/release_detail.html", context)


def _front_matter_stripped(text: str) -> str:
    """The datasheet under its dataset card's YAML header (``---`` ... ``---``), which is for the Hub, not readers."""
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[end + 5 :]
    return text


def render_datasheet(text: str) -> str:
    """Markdown to HTML, then sanitised: the datasheet carries text contributors and importers wrote (accents,
    sentence sources), so whatever HTML it holds is cleaned to a safe subset (no scripts, styles or handlers)."""
    html = markdown.markdown(_front_matter_stripped(text), extensions=["tables", "fenced_code", "sane_lists"])
    return nh3.clean(html)


def release_datasheet(request: HttpRequest, version: str) -> HttpResponse:
    """The release's datasheet (its README.md) as a page rather than a download."""
    try:
        release = selectors.release_public_get(version=version)
        found = selectors.release_file_get(version=version, path="README.md")
    except ServiceError as exc:
        raise Http404(exc.message) from exc
    with default_storage.open(found.storage_name, "rb") as handle:
        text = handle.read().decode("utf-8", errors="replace")
    context = {
        "release": release,
        "datasheet": mark_safe(render_datasheet(text)),  # noqa: S308 - sanitised by nh3 above
        "download": f"/api/v1/releases/{release.version}/files/README.md",
    }
    return render(request, "benchmark/release_datasheet.html", context)


LEADERBOARD_COLUMNS = (
    ("per_hidden", "PER (hidden)"),
    ("per_public", "PER (public test)"),
    ("parameters", "Parameters"),
    ("depth", "Depth"),
    ("macs_per_second", "MACs / s"),
    ("rtf_median", "RTF"),
    ("created_at", "Submitted"),
)


def leaderboard(request: HttpRequest) -> HttpResponse:
    """The board for one release (default the latest), sorted by ``?sort=``, with a plot of PER against size. A
    board that is not blind (no hidden split) drops the hidden column and says so above the table."""
    version = request.GET.get("release") or None
    try:
        board = leaderboard_board(version=version, sort=request.GET.get("sort") or None)
    except ServiceError as exc:
        if exc.status_code == 404:
            raise Http404(exc.message) from exc
        board = leaderboard_board(version=version)  # an unknown sort: the default
    release, sort = board.release, board.sort
    query = f"?release={release.version}&sort={sort}" if release else ""
    columns = [
        {
            "field": field,
            "label": label,
            "next": f"-{field}" if sort == field else field,
            "current": sort.lstrip("-") == field,
            "ranked": field == board.ranked_by,
        }
        for field, label in LEADERBOARD_COLUMNS
        if board.blind or field != "per_hidden"
    ]
    context = {
        "release": release,
        "releases": selectors.releases_public(),
        "board": board,
        "rows": board.rows,
        "sort": sort,
        "columns": columns,
        "plot": leaderboard_plot(board.rows, per=board.ranked_by),
        "json_url": f"/api/v1/leaderboard/{query}",
        "csv_url": f"/api/v1/leaderboard.csv{query}",
    }
    return render(request, "benchmark/leaderboard.html", context)
