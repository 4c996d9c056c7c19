"""The contribution API: one thin class per operation; the work happens in services and selectors."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contributors import selectors
from contributors.models import AgeBand, Clip, Contributor, Gender, InvalidReason, Prompt, ReportReason, Verdict
from contributors.progress import progress_of
from contributors.services.accounts import (
    contributor_for_user,
    contributor_signup,
    contributor_update_profile,
)
from contributors.services.assignments import ValidationOffer, validation_assign
from contributors.services.clips import clip_submit, clip_withdraw
from contributors.services.own_data import DELETION_EXPLAINED, contributor_delete, contributor_export
from contributors.services.votes import VoteOutcome, clip_report, clip_skip, vote_cast
from core.errors import ServiceError
from core.http import parse_range
from core.inputs import StrictIntegerField
from core.lean import LeanTokenDispatch, NotLean, json_object
from core.lockout import LOCKED_CODE, lockout_message, lockout_wait_s, password_confirmed
from core.pagination import Pagination, paginated
from core.parsers import JSONParser
from core.schema import error_responses
from core.throttling import ScopedThrottle, SignupThrottle


class ProfileSerializer(serializers.Serializer):
    age_band = serializers.ChoiceField(choices=AgeBand.choices, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False, allow_blank=True)
    accent = serializers.CharField(max_length=64, required=False, allow_blank=True)
    first_language = serializers.CharField(max_length=64, required=False, allow_blank=True)
    cc0_consent = serializers.BooleanField(required=False)
    guardian_consent = serializers.BooleanField(
        required=False, help_text="Under 18: a parent or legal guardian agrees to the CC0 dedication."
    )
    guardian_email = serializers.CharField(
        max_length=254,
        required=False,
        allow_blank=True,
        help_text="The guardian's e-mail, required with their agreement.",
    )


class MeOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    cc0_consent = serializers.BooleanField(source="has_consented")
    clips_submitted = serializers.SerializerMethodField()
    votes_cast = serializers.SerializerMethodField()
    quota_left = serializers.SerializerMethodField()

    class Meta:
        model = Contributor
        fields = [
            "username", "speaker_id", "age_band", "gender", "accent", "first_language", "cc0_consent",
            "cc0_consent_at", "is_founding_trustee", "trust", "is_trustee", "clips_submitted", "votes_cast",
            "quota_left",
        ]  # fmt: skip

    def get_clips_submitted(self, obj: Contributor) -> int:
        return obj.clips.count()

    def get_votes_cast(self, obj: Contributor) -> int:
        return obj.votes_cast.count()

    def get_quota_left(self, obj: Contributor) -> int:
        return selectors.vote_quota_left(contributor=obj)


class CredentialsInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128)


def _authenticated_user(request: Request):
    """The user the posted credentials belong to; a 400 with ``login_failed`` otherwise, a 429 with
    ``login_locked`` while django-axes holds this address or account locked out (the right password included)."""
    serializer = CredentialsInput(data=request.data)
    serializer.is_valid(raise_exception=True)
    # Django's request, not DRF's wrapper: axes marks the lock-out on the object it is given, and its middleware
    # reads that mark from Django's request.
    django_request = request._request
    user = authenticate(django_request, **serializer.validated_data)
    if getattr(django_request, "axes_locked_out", False):
        wait = lockout_wait_s(django_request)
        raise ServiceError(LOCKED_CODE, lockout_message(), status_code=429, retry_after_s=wait)
    if user is None:
        raise ServiceError("login_failed", "Wrong username or password.", status_code=400)
    return user


class SessionStartingApi(APIView):
    """An endpoint that logs the caller in checks CSRF although the caller is anonymous: DRF checks it only for
    sessions already open, so a page elsewhere could post a form here and log a visitor into an account of
    its choosing (login CSRF), whose recordings would then be theirs. Browsers get the token from a page with a
    form (``/login/``, ``/signup/``: the ``csrftoken`` cookie); scripts use ``auth/token``, which opens no session."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        try:
            SessionAuthentication().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise ServiceError(
                "csrf_failed",
                "This form must come from this site's own pages: reload the page and try again.",
                status_code=403,
            ) from exc


class SignupApi(SessionStartingApi):
    """A new account, logged in. Throttled per client address (``THROTTLE_SIGNUP``), one budget with the page."""

    permission_classes = [AllowAny]
    throttle_classes = [SignupThrottle]

    class SignupInput(ProfileSerializer):
        username = serializers.RegexField(r"^[\w.@+-]{3,150}$", max_length=150)
        password = serializers.CharField(max_length=128, write_only=True)
        email = serializers.EmailField(required=False, allow_blank=True, max_length=254)

    @extend_schema(request=SignupInput, responses={201: MeOutput, **error_responses(409)})
    def post(self, request: Request) -> Response:
        data = self._validated(request)
        contributor = contributor_signup(**data)
        login(request, contributor.user, backend="django.contrib.auth.backends.ModelBackend")
        return Response(MeOutput(contributor).data, status=status.HTTP_201_CREATED)

    def _validated(self, request: Request) -> dict:
        serializer = self.SignupInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class LoginApi(SessionStartingApi):
    """Session login for the browser (the response sets the session and CSRF cookies)."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "auth"

    @extend_schema(request=CredentialsInput, responses={200: MeOutput})
    def post(self, request: Request) -> Response:
        user = _authenticated_user(request)
        login(request, user)
        return Response(MeOutput(contributor_for_user(user)).data)


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenApi(APIView):
    """A bearer token for scripts: ``Authorization: Token <key>``."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "auth"

    class TokenOutput(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=CredentialsInput, responses={200: TokenOutput})
    def post(self, request: Request) -> Response:
        user = _authenticated_user(request)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class MeApi(APIView):
    parser_classes = [JSONParser, FormParser]

    @extend_schema(responses={200: MeOutput})
    def get(self, request: Request) -> Response:
        return Response(MeOutput(contributor_for_user(request.user)).data)

    @extend_schema(request=ProfileSerializer, responses={200: MeOutput})
    def patch(self, request: Request) -> Response:
        serializer = ProfileSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        contributor = contributor_update_profile(
            contributor=contributor_for_user(request.user), **serializer.validated_data
        )
        return Response(MeOutput(contributor).data)


class ProgressClipOutput(serializers.ModelSerializer):
    prompt_text = serializers.CharField(source="prompt.text")

    class Meta:
        model = Clip
        fields = ["id", "prompt_text", "status", "votes_counted", "votes_valid_counted", "duration_s", "created_at"]


class WeekGoalOutput(serializers.Serializer):
    week_start = serializers.DateField(help_text="Monday of this week.")
    validated_s = serializers.FloatField(help_text="Seconds of this week's recordings that are valid now.")
    goal_s = serializers.FloatField()
    streak_weeks = serializers.IntegerField(help_text="Weeks in a row at the goal, up to this week or the last.")


class ProgressOutput(serializers.Serializer):
    clips = ProgressClipOutput(many=True, help_text="Your latest clips, newest first.")
    votes_needed = serializers.IntegerField(help_text="Unanimous counted votes that make a clip valid.")
    week = WeekGoalOutput()


class MeProgressApi(APIView):
    """Your latest clips on their way through validation (status, counted votes so far, and the unanimous
    votes a clip needs to be valid), and this week's seconds of validated recordings against the weekly goal,
    with the streak of weeks that met it. The record page and the dashboard poll it."""

    @extend_schema(responses={200: ProgressOutput})
    def get(self, request: Request) -> Response:
        progress = progress_of(contributor=contributor_for_user(request.user))
        return Response(ProgressOutput(progress).data)


def export_response(contributor: Contributor) -> FileResponse:
    """The zip of ``contributor_export`` as a download (the page's button and the API share it)."""
    return FileResponse(
        contributor_export(contributor=contributor),
        as_attachment=True,
        filename=f"my-data-{contributor.speaker_id}.zip",
        content_type="application/zip",
        headers={"Cache-Control": "private, no-store"},
    )


class MeExportApi(APIView):
    """Everything the platform holds about you, as a zip: ``data.json`` (account, profile and consents, trust,
    clips, votes, reports, skips, assignments, leaderboard submissions), ``README.txt`` and ``audio/`` (each
    clip not withdrawn, byte for byte as stored)."""

    @extend_schema(responses={(200, "application/zip"): bytes})
    def get(self, request: Request) -> FileResponse:
        return export_response(contributor_for_user(request.user))


class MeDeleteApi(APIView):
    """Delete your account, confirmed by your password. What it means is the ``explained`` list of the answer
    (and of a GET): the login and profile go, the clips leave every future release (published releases keep
    them under the pseudonymous speaker id), votes already cast keep counting. The session ends."""

    class DeleteInput(serializers.Serializer):
        password = serializers.CharField(max_length=128, allow_blank=True, trim_whitespace=False)

    class DeleteOutput(serializers.Serializer):
        deleted = serializers.BooleanField()
        speaker_id = serializers.CharField()
        explained = serializers.ListField(child=serializers.CharField())

    class ExplainedOutput(serializers.Serializer):
        explained = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses={200: ExplainedOutput})
    def get(self, request: Request) -> Response:
        return Response({"explained": list(DELETION_EXPLAINED)})

    @extend_schema(request=DeleteInput, responses={200: DeleteOutput, **error_responses(410)})
    def post(self, request: Request) -> Response:
        serializer = self.DeleteInput(data=request.data)
        if not serializer.is_valid():
            raise ServiceError("password_missing", "Send your password to confirm the deletion.")
        deleted = contributor_delete(
            contributor=contributor_for_user(request.user),
            password=serializer.validated_data["password"],
            confirm=partial(password_confirmed, request._request),  # Django's request: axes marks a lock-out on it
        )
        logout(request)
        return Response({"deleted": True, "speaker_id": deleted.speaker_id, "explained": list(DELETION_EXPLAINED)})


class PromptOutput(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "text", "words", "phones", "prompt_type"]


class PromptsNextApi(APIView):
    class PromptsNextParams(serializers.Serializer):
        count = StrictIntegerField(min_value=1, max_value=50, default=5)

    @extend_schema(parameters=[PromptsNextParams], responses={200: PromptOutput(many=True)})
    def get(self, request: Request) -> Response:
        params = self.PromptsNextParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        prompts = selectors.prompts_next_for(
            contributor=contributor_for_user(request.user), count=params.validated_data["count"]
        )
        return Response(PromptOutput(prompts, many=True).data)


class ClipOutput(serializers.ModelSerializer):
    prompt_text = serializers.CharField(source="prompt.text")
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = Clip
        fields = [
            "id", "prompt", "prompt_text", "status", "score", "votes_counted", "votes_valid_counted",
            "duration_s", "sha256", "audio_url",
            "original_format", "original_sample_rate", "original_channels", "rms_dbfs", "peak_dbfs",
            "clipping_ratio", "speech_ratio", "snr_db", "provenance", "withdrawn_at", "created_at", "updated_at",
        ]  # fmt: skip

    def get_audio_url(self, obj: Clip) -> str:
        return f"/api/v1/clips/{obj.pk}/audio"


class ClipCreateApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class ClipCreateInput(serializers.Serializer):
        # Untrimmed: the service reads ASCII digits and nothing else (core.inputs), so " 1 " is refused, not read as 1.
        prompt = serializers.CharField(max_length=20, trim_whitespace=False)
        audio = serializers.FileField(allow_empty_file=True)
        # The speaker id the recording page was opened as (409 speaker_changed when another account is logged in).
        speaker = serializers.CharField(max_length=20, required=False, default="")

    @extend_schema(request=ClipCreateInput, responses={201: ClipOutput, 200: ClipOutput, **error_responses(409)})
    def post(self, request: Request) -> Response:
        serializer = self.ClipCreateInput(data=request.data)
        if not serializer.is_valid():
            if "audio" in serializer.errors and "prompt" not in serializer.errors:
                raise ServiceError("audio_missing", "Send the recording as the multipart field 'audio'.")
            serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["audio"]
        submission = clip_submit(
            contributor=contributor_for_user(request.user),
            prompt_id=serializer.validated_data["prompt"],
            data=upload.read(),
            recorded_by=serializer.validated_data["speaker"],
        )
        code = status.HTTP_201_CREATED if submission.created else status.HTTP_200_OK
        return Response(ClipOutput(submission.clip).data, status=code)


class ClipsMineApi(APIView):
    """Your clips, newest first, a page at a time (``?page=``, ``?page_size=`` up to 200)."""

    pagination_class = Pagination

    @extend_schema(responses={200: ClipOutput(many=True)})
    def get(self, request: Request) -> Response:
        clips = selectors.clips_of(contributor=contributor_for_user(request.user))
        return paginated(request, clips, lambda page: ClipOutput(page, many=True).data)


class ClipDetailApi(APIView):
    @extend_schema(responses={200: ClipOutput})
    def get(self, request: Request, clip_id: int) -> Response:
        return Response(ClipOutput(_visible_clip(request, clip_id)).data)


class ClipAudioApi(APIView):
    """The stored FLAC. A single ``Range: bytes=`` range answers 206, so that a player can seek (a clip is at
    most a few hundred kilobytes: it is read whole)."""

    @extend_schema(responses={(200, "audio/flac"): bytes, (206, "audio/flac"): bytes, **error_responses(410, 416)})
    def get(self, request: Request, clip_id: int) -> HttpResponse:
        clip = _visible_clip(request, clip_id)
        if clip.withdrawn_at is not None:
            raise ServiceError(
                "clip_withdrawn", "This clip was withdrawn by its author; its audio is deleted.", status_code=410
            )
        with default_storage.open(clip.audio.name, "rb") as handle:
            data = handle.read()
        headers = {"Cache-Control": "private, max-age=3600", "Accept-Ranges": "bytes"}
        range_header = request.headers.get("Range")
        try:
            byte_range = parse_range(range_header, len(data)) if range_header else None
        except ServiceError as exc:
            return Response(exc.as_dict(), status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        if byte_range is None:  # no Range, or one to ignore (another unit, several ranges): the whole clip
            return HttpResponse(data, content_type="audio/flac", headers=headers)
        start, end = byte_range
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return HttpResponse(data[start : end + 1], status=206, content_type="audio/flac", headers=headers)


def _visible_clip(request: Request, clip_id: int) -> Clip:
    clip = selectors.clip_visible_to(
        clip_id=clip_id, contributor=contributor_for_user(request.user), is_staff=request.user.is_staff
    )
    if clip is None:
        raise ServiceError("clip_unknown", f"There is no clip {clip_id} that you can see.", status_code=404)
    return clip


class ClipWithdrawApi(APIView):
    """Your own clip, taken back: its audio is deleted and no future release includes it (published releases,
    CC0 and immutable, keep their copy)."""

    @extend_schema(request=None, responses={200: ClipOutput, **error_responses(409)})
    def post(self, request: Request, clip_id: int) -> Response:
        clip = clip_withdraw(contributor=contributor_for_user(request.user), clip_id=clip_id)
        return Response(ClipOutput(clip).data)


class ValidationClipOutput(serializers.ModelSerializer):
    prompt_text = serializers.CharField(source="prompt.text")
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = Clip
        fields = ["id", "prompt_text", "duration_s", "audio_url"]

    def get_audio_url(self, obj: Clip) -> str:
        return f"/api/v1/clips/{obj.pk}/audio"


class ValidationNextApi(LeanTokenDispatch):
    """The server's pick of a clip to validate, recorded as an assignment: votes, skips and reports are
    accepted only on it, until ``expires_at``. Asking again while it lasts returns the same clip. ``clip``
    is null when none is served, and ``reason`` says why: ``quota_exhausted`` (record more to earn votes)
    or ``queue_empty``. A token request is answered by the lean dispatch (core/lean.py), the same way."""

    lean_methods = frozenset({"GET"})

    class AssignmentOutput(serializers.Serializer):
        id = serializers.IntegerField()
        expires_at = serializers.DateTimeField()

    class ValidationNextOutput(serializers.Serializer):
        clip = ValidationClipOutput(allow_null=True)
        assignment = serializers.SerializerMethodField()
        quota_left = serializers.IntegerField()
        reason = serializers.ChoiceField(choices=["", "quota_exhausted", "queue_empty"])

        @extend_schema_field(serializers.DictField(allow_null=True))
        def get_assignment(self, offer) -> dict | None:
            if offer.assignment is None:
                return None
            return ValidationNextApi.AssignmentOutput(offer.assignment).data

    @extend_schema(responses={200: ValidationNextOutput, **error_responses(403)})
    def get(self, request: Request) -> Response:
        offer = validation_assign(trustee=contributor_for_user(request.user))
        return Response(offer_json(offer))

    def lean(self, request: HttpRequest, user: Any, data: None) -> tuple[dict[str, Any], int]:
        return offer_json(validation_assign(trustee=contributor_for_user(user))), status.HTTP_200_OK


_EXPIRES_AT = serializers.DateTimeField()  # its format (ISO 8601, "Z" for UTC) without a serializer per request


def offer_json(offer: ValidationOffer) -> dict[str, Any]:
    """``ValidationNextOutput`` written out: the serializers (built and deep-copied per request) cost more than
    the rest of the answer on the validation path, which answers every vote with an offer (benchmarks/vote_api.py).
    tests/contributors/test_validation_statements.py holds it equal to the serializer's output."""
    clip, assignment = offer.clip, offer.assignment
    return {
        "clip": None
        if clip is None
        else {
            "id": clip.pk,
            "prompt_text": clip.prompt.text,
            "duration_s": clip.duration_s,
            "audio_url": f"/api/v1/clips/{clip.pk}/audio",
        },
        "assignment": None
        if assignment is None
        else {"id": assignment.pk, "expires_at": _EXPIRES_AT.to_representation(assignment.expires_at)},
        "quota_left": offer.quota_left,
        "reason": offer.reason,
    }


class VoteCreateApi(LeanTokenDispatch):
    """A token request is answered by the lean dispatch (core/lean.py), the same way."""

    throttle_classes = [ScopedThrottle]
    throttle_scope = "votes"
    lean_methods = frozenset({"POST"})

    class VoteInput(serializers.Serializer):
        verdict = serializers.ChoiceField(choices=Verdict.choices)
        reason = serializers.ChoiceField(
            choices=InvalidReason.choices,
            required=False,
            allow_blank=True,
            help_text="Required with an invalid verdict.",
        )

    class VoteOutput(serializers.Serializer):
        """The vote, and the voter's next assignment (what ``validation/next`` would answer now; null when
        they are no longer a trustee), so that judging a clip takes one request."""

        clip = serializers.IntegerField(source="clip.pk")
        verdict = serializers.CharField(source="vote.verdict")
        reason = serializers.CharField(source="vote.reason")
        clip_status = serializers.CharField(source="clip.status")
        quota_left = serializers.IntegerField()
        next = ValidationNextApi.ValidationNextOutput(allow_null=True)

    @extend_schema(request=VoteInput, responses={201: VoteOutput, **error_responses(409)})
    def post(self, request: Request, clip_id: int) -> Response:
        serializer = self.VoteInput(data=request.data)
        if not serializer.is_valid():
            if "verdict" not in serializer.errors:
                raise ServiceError("reason_invalid", f"A reason is one of {', '.join(InvalidReason.values)}.")
            raise ServiceError("verdict_invalid", f"Send a verdict: one of {', '.join(Verdict.values)}.")
        outcome = vote_cast(
            voter=contributor_for_user(request.user),
            clip_id=clip_id,
            verdict=serializer.validated_data["verdict"],
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(vote_json(outcome), status=status.HTTP_201_CREATED)

    def lean_input(self, request: HttpRequest) -> tuple[str | None, str]:
        """``VoteInput`` for string values (anything else goes to the serializer): the verdict, None when missing,
        and the reason, "" when missing or blank."""
        data = json_object(request)
        if any(name in data and not isinstance(data[name], str) for name in ("verdict", "reason")):
            raise NotLean
        return data.get("verdict"), data.get("reason", "")

    def lean(
        self, request: HttpRequest, user: Any, data: tuple[str | None, str], clip_id: str
    ) -> tuple[dict[str, Any], int]:
        verdict, reason = data
        if verdict not in Verdict.values:  # missing, blank or unknown: the serializer's error on "verdict"
            raise ServiceError("verdict_invalid", f"Send a verdict: one of {', '.join(Verdict.values)}.")
        if reason and reason not in InvalidReason.values:
            raise ServiceError("reason_invalid", f"A reason is one of {', '.join(InvalidReason.values)}.")
        outcome = vote_cast(voter=contributor_for_user(user), clip_id=clip_id, verdict=verdict, reason=reason)
        return vote_json(outcome), status.HTTP_201_CREATED


def vote_json(outcome: VoteOutcome) -> dict[str, Any]:
    """``VoteOutput`` written out (see :func:`offer_json`)."""
    return {
        "clip": outcome.clip.pk,
        "verdict": str(outcome.vote.verdict),
        "reason": str(outcome.vote.reason),
        "clip_status": str(outcome.clip.status),
        "quota_left": outcome.quota_left,
        "next": None if outcome.next is None else offer_json(outcome.next),
    }


class ClipSkipApi(APIView):
    @extend_schema(request=None, responses={204: None, **error_responses(409)})
    def post(self, request: Request, clip_id: int) -> Response:
        clip_skip(contributor=contributor_for_user(request.user), clip_id=clip_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ClipReportApi(APIView):
    class ReportInput(serializers.Serializer):
        reason = serializers.ChoiceField(choices=ReportReason.choices)
        # Checked by the service (400 note_invalid, note_too_long past 1,000 characters), which says which.
        note = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    @extend_schema(request=ReportInput, responses={201: None, **error_responses(409)})
    def post(self, request: Request, clip_id: int) -> Response:
        serializer = self.ReportInput(data=request.data)
        if not serializer.is_valid():
            if "reason" in serializer.errors:
                raise ServiceError("reason_invalid", f"Give a reason: one of {', '.join(ReportReason.values)}.")
            raise ServiceError("note_invalid", "The note is plain text.")
        clip_report(reporter=contributor_for_user(request.user), clip_id=clip_id, **serializer.validated_data)
        return Response(status=status.HTTP_201_CREATED)
