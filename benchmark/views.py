"""Server-rendered release pages: the list and each release's datasheet. Thin: reads through selectors."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from benchmark import selectors
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
