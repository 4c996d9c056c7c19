"""Server-rendered pages: thin, reading through selectors and writing through services."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_permissions_policy.decorators import permissions_policy_override

from contributors.conf import clip_limits, sentence_rules
from contributors.models import InvalidReason, PromptReportReason
from contributors.selectors import proposals_of, proposals_to_review_for, vote_quota_left
from contributors.services.accounts import contributor_for_user, contributor_signup, contributor_update_profile
from contributors.services.clips import clip_withdraw
from contributors.services.notices import contributor_take_trustee_notice
from contributors.services.own_data import DELETION_EXPLAINED, contributor_delete
from contributors.services.proposals import proposal_review, sentence_propose
from core.errors import ServiceError
from core.lockout import password_confirmed
from core.throttling import signup_wait
from frontend.forms import PUBLISHED_NOTE, ProfileForm, SignupForm
from frontend.selectors import corpus_overview, dashboard_for

# How often the "recordings in review" panel asks for news while a clip is pending (settings.PROGRESS_POLL_S):
# a clip needs several trustees' votes, so seconds of delay cost nothing and spare the server.
PROGRESS_POLL_S = 15


def _progress_poll_s() -> float:
    return getattr(settings, "PROGRESS_POLL_S", PROGRESS_POLL_S)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/home.html", {"overview": corpus_overview()})


# The form field a refusal of the accounts service belongs to.
_GUARDIAN_FIELDS = {
    "guardian_consent_required": "guardian_consent",
    "guardian_email_required": "guardian_email",
    "guardian_email_invalid": "guardian_email",
}


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("record")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        # Every attempt counts, valid or not, against the address's budget shared with the API's auth/signup.
        wait = signup_wait(request)
        if wait is not None:
            return _too_many(request, wait, "Too many sign-ups from this address.")
    if request.method == "POST" and form.is_valid():
        try:
            contributor = contributor_signup(**form.cleaned_data)
        except ServiceError as exc:
            field = {"password_invalid": "password", "email_invalid": "email", **_GUARDIAN_FIELDS}.get(exc.code)
            form.add_error(field or "username", exc.message)
        else:
            login(request, contributor.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome! Your account is ready.")
            return redirect("record" if contributor.has_consented else "profile")
    return render(request, "frontend/signup.html", {"form": form, "published_note": PUBLISHED_NOTE})


def _too_many(request: HttpRequest, wait_s: int, message: str) -> HttpResponse:
    response = render(request, "frontend/too_many.html", {"message": message, "minutes": -(-wait_s // 60)}, status=429)
    response["Retry-After"] = str(wait_s)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    contributor = contributor_for_user(request.user)
    initial = {f: getattr(contributor, f) for f in ("age_band", "gender", "accent", "first_language")}
    consents = {
        "cc0_consent": contributor.has_consented,
        "guardian_consent": contributor.guardian_consent_at is not None,
        "guardian_email": contributor.guardian_email,
    }
    form = ProfileForm(request.POST or None, initial={**initial, **consents})
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        if not data["cc0_consent"]:
            data.pop("cc0_consent")  # consent is given once; unticking does not withdraw published clips
        try:
            contributor_update_profile(contributor=contributor, **data)
        except ServiceError as exc:
            form.add_error(_GUARDIAN_FIELDS.get(exc.code), exc.message)
        else:
            messages.success(request, "Profile saved.")
            next_url = request.GET.get("next", "")
            return redirect(next_url if next_url in {"/record/", "/validate/", "/dashboard/"} else "profile")
    return render(
        request,
        "frontend/profile.html",
        {"form": form, "contributor": contributor, "published_note": PUBLISHED_NOTE},
    )


# The one page that records: the microphone is allowed here, for this origin only (off everywhere else).
@permissions_policy_override({**settings.PERMISSIONS_POLICY, "microphone": "self"})
@login_required
def record(request: HttpRequest) -> HttpResponse:
    contributor = contributor_for_user(request.user)
    if not contributor.has_consented:
        messages.info(request, "Before recording, please read and accept the CC0 dedication below.")
        return redirect("/profile/?next=/record/")
    context = {
        "contributor": contributor,
        "limits": clip_limits(),
        "trustee_notice": contributor_take_trustee_notice(contributor=contributor),
        "progress_poll_s": _progress_poll_s(),
        "report_reasons": PromptReportReason.choices,
    }
    return render(request, "frontend/record.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def sentences(request: HttpRequest) -> HttpResponse:
    """Propose a sentence; trustees also review others' proposals here. A refused sentence stays in the box with
    the reason (400)."""
    contributor = contributor_for_user(request.user)
    text, error, code = "", "", 200
    if request.method == "POST":
        text = request.POST.get("text", "")
        try:
            sentence_propose(author=contributor, text=text)
        except ServiceError as exc:
            error, code = exc.message, exc.status_code
        else:
            messages.success(request, "Thank you: your sentence is waiting for two trustees' review.")
            return redirect("sentences")
    context = {
        "contributor": contributor,
        "rules": sentence_rules(),
        "text": text,
        "propose_error": error,
        "to_review": proposals_to_review_for(reviewer=contributor),
        "mine": proposals_of(author=contributor),
    }
    return render(request, "frontend/sentences.html", context, status=code)


@login_required
@require_http_methods(["POST"])
def sentence_review_view(request: HttpRequest, proposal_id: int) -> HttpResponse:
    approve = {"yes": True, "no": False}.get(request.POST.get("approve", ""))
    try:
        outcome = proposal_review(reviewer=contributor_for_user(request.user), proposal_id=proposal_id, approve=approve)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        verdict = "Approved" if approve else "Rejected"
        messages.success(request, f"{verdict}: “{outcome.proposal.text}”")  # the sentence ends with its own stop
    return redirect("sentences")


@login_required
def validate(request: HttpRequest) -> HttpResponse:
    contributor = contributor_for_user(request.user)
    # Where the validator stands, before any clip is served: trustee or not, and the votes left (at 0 the page
    # asks for no clip).
    context = {
        "contributor": contributor,
        "quota_left": vote_quota_left(contributor=contributor) if contributor.is_trustee else 0,
        "invalid_reasons": InvalidReason.choices,
        "trustee_notice": contributor_take_trustee_notice(contributor=contributor),
    }
    return render(request, "frontend/validate.html", context)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    contributor = contributor_for_user(request.user)
    context = {
        "dashboard": dashboard_for(contributor=contributor),
        "trustee_notice": contributor_take_trustee_notice(contributor=contributor),
        "progress_poll_s": _progress_poll_s(),
    }
    return render(request, "frontend/dashboard.html", context)


@login_required
@require_http_methods(["POST"])
def clip_withdraw_view(request: HttpRequest, clip_id: int) -> HttpResponse:
    try:
        clip = clip_withdraw(contributor=contributor_for_user(request.user), clip_id=clip_id)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Withdrawn: “{clip.prompt.text.rstrip('.')}”. Its audio is deleted.")
    return redirect("/dashboard/")


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest) -> HttpResponse:
    """What deletion does, then the password to confirm it; a wrong one keeps the account and says so (400)."""
    contributor = contributor_for_user(request.user)
    error, status = "", 200
    if request.method == "POST":
        try:
            contributor_delete(
                contributor=contributor,
                password=request.POST.get("password", ""),
                confirm=partial(password_confirmed, request),
            )
        except ServiceError as exc:
            error, status = exc.message, exc.status_code  # 400 a wrong password, 429 locked out after too many
        else:
            logout(request)
            messages.success(
                request, "Your account is deleted, and your recordings with it. Thank you for taking part."
            )
            return redirect("/")
    context = {"contributor": contributor, "explained": DELETION_EXPLAINED, "error": error}
    return render(request, "frontend/account_delete.html", context, status=status)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and compose healthchecks: the process answers and the database too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
