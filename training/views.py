"""The runs pages: every run with its progress, and one run with live progress, curves, metrics and its log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from training import selectors
from training.services.runs import run_cancel


def run_list(request: HttpRequest) -> HttpResponse:
    """Every run; with ``?release=V``, that release's runs and the paper's comparison over their seeds."""
    release = request.GET.get("release", "")[:40] or None
    runs = selectors.runs_page(release=release)
    board = selectors.runs_board_results(runs)
    rows = [{"run": run, "percent": selectors.run_percent(run), "board": board.get(run.pk)} for run in runs]
    context = {"rows": rows, "release": release}
    if release:
        context["comparison"], context["verdicts"] = selectors.release_comparison(release=release)
    return render(request, "training/run_list.html", context)


def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    try:
        run = selectors.run_get(run_id=run_id)
    except ServiceError as exc:
        raise Http404(exc.message) from exc
    context = {
        "run": run,
        "board": selectors.runs_board_results([run]).get(run.pk),
        "percent": selectors.run_percent(run),
        "curves": selectors.run_curves(run),
        "test": run.metrics.get("test", {}),
        "dev": run.metrics.get("dev", {}),
        "model": run.config.get("model", {}),
        "train": run.config.get("train", {}),
        # The log and a failure's exception (paths, hosts, tracebacks) are for staff.
        "log_tail": run.log[-6000:] if request.user.is_staff else "",
        "show_error_detail": request.user.is_staff,
        "weights": ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in run.metrics.get("weights", {}).items()),
    }
    return render(request, "training/run_detail.html", context)


@require_POST
@staff_member_required
def run_cancel_page(request: HttpRequest, run_id: int) -> HttpResponse:
    try:
        run_cancel(run_id=run_id)
        messages.success(request, f"Run {run_id} is cancelled or will stop at its next progress report.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("training-run-page", run_id=run_id)
