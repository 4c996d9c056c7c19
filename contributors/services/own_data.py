"""Your voice, your data: everything the platform holds about a contributor, as a zip; and account deletion.

What deletion means (shown on the page before the contributor confirms, ``DELETION_EXPLAINED``):

* **The person is gone.** The login (username, e-mail, password, tokens, sessions) is deleted; the contributor
  row loses its link to it and every demographic field (age band, gender, accent, first language), and is
  marked ``deleted_at``. What stays is the pseudonymous speaker id, which nothing on the platform links to a
  person any more, so that the published releases that carry it stay consistent with the platform's records
  (the speaker's split, the delta of the next release).
* **The recordings leave every future release.** Each clip is marked withdrawn (``withdrawn_at``) and its audio
  is deleted at once; ``release_clips_valid`` takes no withdrawn clip and nobody's clip whose account is
  deleted, and the next release's ``DELTA.json`` lists those utterances under ``deleted`` (and the ones their
  authors withdrew one by one under ``withdrawn``). Published releases cannot be rewritten: they are CC0
  corpora, already downloaded, fixed by their checksums; they keep the audio under the speaker id, with the
  demographics published then.
* **Validation already done stands.** The votes the person cast stay, attached to the anonymised row, and
  count exactly as before; their clips already decided keep their status and their place in the engine, so
  the person's trust (and with it whether their votes count) is what it was. Only their clips still pending
  change: they are discarded with a fixed status, as a withdrawal does, so that no trustee is asked to judge
  audio that no longer exists. Under the default ``wilson`` preset a pending clip counts in nobody's trust, so
  the full recompute finds nothing to change; under the ``proposal`` preset, whose trust counts pending clips,
  the deleted contributor's trust can rise by the pending clips removed (and their votes may start counting).
  Either way the deletion runs the full recompute in its transaction (``trust_write_recomputed``), so
  ``manage.py trust_recompute --check`` passes afterwards.
* Their reports keep their reason but lose their free-text note; their skips and open assignments are dropped.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipReport,
    ClipSkip,
    ClipStatus,
    Contributor,
    PromptReport,
    ValidationAssignment,
)
from contributors.services.trust import trust_write_recomputed
from core.errors import ServiceError

EXPORT_FORMAT = 1
DELETION_EXPLAINED = (
    "Your login, e-mail and profile are deleted, and you cannot sign in again.",
    "The audio of every recording you made is deleted now, and no future release includes any of them: the next "
    "release lists them as removed (DELTA.json, under \u201cdeleted\u201d).",
    "Releases already published cannot be changed: they are public-domain (CC0) corpora that others have "
    "downloaded, fixed by their checksums. They keep your recordings under your pseudonymous speaker id, with "
    "the age band, gender, accent and first language published then; after deletion nothing on this site links "
    "that id to you.",
    "The votes you cast as a trustee keep counting for the validation already done; they are no longer linked to you.",
    "This cannot be undone. Download your data first if you want a copy.",
)
_ANONYMISED = {
    "age_band": "", "gender": "", "accent": "", "first_language": "", "guardian_email": "", "vote_allowance": 0
}  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _deleted() -> ServiceError:
    return ServiceError("account_deleted", "This account is deleted; there is nothing left to export.", status_code=410)


def contributor_export_data(*, contributor: Contributor) -> dict[str, Any]:
    """Everything held about the contributor, as JSON-ready data: the account, the profile and consents, trust,
    every clip (with its measurements and the prompt read), the votes, reports, skips and assignments, the
    sentences reported, skipped, proposed and reviewed, and the leaderboard submissions of the login."""
    user = contributor.user
    if user is None:
        raise _deleted()
    clips = list(Clip.objects.filter(contributor=contributor).select_related("prompt").order_by("id"))
    return {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now().isoformat(),
        "account": {
            "username": user.get_username(),
            "email": user.email,
            "date_joined": _iso(user.date_joined),
            "last_login": _iso(user.last_login),
        },
        "profile": {
            "speaker_id": contributor.speaker_id,
            "age_band": contributor.age_band,
            "gender": contributor.gender,
            "accent": contributor.accent,
            "first_language": contributor.first_language,
            "cc0_consent_at": _iso(contributor.cc0_consent_at),
            "guardian_consent_at": _iso(contributor.guardian_consent_at),
            "guardian_email": contributor.guardian_email,
            "created_at": _iso(contributor.created_at),
        },
        "trust": {
            "trust": contributor.trust,
            "is_trustee": contributor.is_trustee,
            "is_founding_trustee": contributor.is_founding_trustee,
            "vote_allowance": contributor.vote_allowance,
            "trustee_notice_at": _iso(contributor.trustee_notice_at),
        },
        "clips": [_clip_data(clip) for clip in clips],
        "votes_cast": [
            {"clip": v["clip_id"], "verdict": v["verdict"], "reason": v["reason"], "created_at": _iso(v["created_at"])}
            for v in contributor.votes_cast.order_by("id").values("clip_id", "verdict", "reason", "created_at")
        ],
        "reports": [
            {"clip": r["clip_id"], "reason": r["reason"], "note": r["note"], "created_at": _iso(r["created_at"])}
            for r in contributor.reports.order_by("id").values("clip_id", "reason", "note", "created_at")
        ],
        "skips": [
            {"clip": s["clip_id"], "created_at": _iso(s["created_at"])}
            for s in contributor.skips.order_by("id").values("clip_id", "created_at")
        ],
        "sentence_reports": [
            {"prompt": r["prompt__text"], "reason": r["reason"], "note": r["note"], "created_at": _iso(r["created_at"])}
            for r in contributor.prompt_reports.order_by("id").values("prompt__text", "reason", "note", "created_at")
        ],
        "sentence_skips": [
            {"prompt": s["prompt__text"], "created_at": _iso(s["created_at"])}
            for s in contributor.prompt_skips.order_by("id").values("prompt__text", "created_at")
        ],
        "sentence_proposals": [
            {"text": p["text"], "status": p["status"], "created_at": _iso(p["created_at"])}
            for p in contributor.proposals.order_by("id").values("text", "status", "created_at")
        ],
        "proposal_reviews": [
            {"proposal": r["proposal__text"], "approve": r["approve"], "created_at": _iso(r["created_at"])}
            for r in contributor.proposal_reviews.order_by("id").values("proposal__text", "approve", "created_at")
        ],
        "validation_assignments": [
            {"clip": a["clip_id"], "created_at": _iso(a["created_at"]), "outcome": a["outcome"]}
            for a in contributor.assignments.order_by("id").values("clip_id", "created_at", "outcome")
        ],
        "leaderboard_submissions": [
            {
                "uuid": str(s["uuid"]),
                "name": s["name"],
                "description": s["description"],
                "url": s["url"],
                "status": s["status"],
                "created_at": _iso(s["created_at"]),
            }
            for s in user.submissions.order_by("id").values(
                "uuid", "name", "description", "url", "status", "created_at"
            )
        ],
    }


def _clip_data(clip: Clip) -> dict[str, Any]:
    return {
        "id": clip.pk,
        "prompt": {"id": clip.prompt_id, "text": clip.prompt.text},
        "audio": _audio_member(clip) if clip.audio else None,
        "sha256": clip.sha256,
        "status": clip.status,
        "score": clip.score,
        "votes_counted": clip.votes_counted,
        "votes_valid_counted": clip.votes_valid_counted,
        "duration_s": clip.duration_s,
        "original_format": clip.original_format,
        "original_sample_rate": clip.original_sample_rate,
        "original_channels": clip.original_channels,
        "original_bytes": clip.original_bytes,
        "rms_dbfs": clip.rms_dbfs,
        "peak_dbfs": clip.peak_dbfs,
        "clipping_ratio": clip.clipping_ratio,
        "speech_ratio": clip.speech_ratio,
        "snr_db": clip.snr_db,
        "provenance": clip.provenance,
        "created_at": _iso(clip.created_at),
        "withdrawn_at": _iso(clip.withdrawn_at),
    }


def _audio_member(clip: Clip) -> str:
    return f"audio/clip-{clip.pk:08d}_prompt-{clip.prompt_id:06d}.flac"


_README = """Your data from the speech corpus platform, exported {when}.

data.json   everything the platform holds about you: account, profile and consents, trust, your clips (with
            the measurements taken and the sentence you read), the votes, reports and skips you made, and your
            leaderboard submissions. Format version {format}.
audio/      the stored audio of each of your clips that is not withdrawn: 16 kHz mono FLAC, byte for byte as
            stored (its sha256 is the clip's "sha256" in data.json).
"""


def contributor_export(*, contributor: Contributor) -> IO[bytes]:
    """The export as a zip in a temporary file (rewound; the caller closes it): ``data.json``, ``README.txt``
    and ``audio/…flac``. On disk rather than in memory: a prolific contributor's audio runs to hundreds of MB."""
    if contributor.deleted_at is not None or contributor.user is None:
        raise _deleted()
    data = contributor_export_data(contributor=contributor)
    handle = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the response, which closes it)
    with zipfile.ZipFile(handle, "w") as archive:
        archive.writestr(
            "README.txt",
            _README.format(when=data["exported_at"], format=EXPORT_FORMAT),
            compress_type=zipfile.ZIP_DEFLATED,
        )
        archive.writestr(
            "data.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n", compress_type=zipfile.ZIP_DEFLATED
        )
        for clip in Clip.objects.filter(contributor=contributor, withdrawn_at__isnull=True).exclude(audio=""):
            # FLAC is compressed already: stored as is.
            with default_storage.open(clip.audio.name, "rb") as source:
                archive.writestr(_audio_member(clip), source.read(), compress_type=zipfile.ZIP_STORED)
    handle.seek(0)
    return handle


def contributor_delete(
    *, contributor: Contributor, password: str, confirm: Callable[[Any, str], bool] | None = None
) -> Contributor:
    """Delete the contributor's account as ``DELETION_EXPLAINED`` and the module docstring say, after checking
    their password (with ``confirm(user, password)`` when given: the pages and the API count a wrong one as a
    failed login, core.lockout). Refused with 400 ``password_wrong`` (nothing changes) and 410 ``account_deleted``."""
    user = contributor.user
    if contributor.deleted_at is not None or user is None:
        raise ServiceError("account_deleted", "This account is already deleted.", status_code=410)
    check = confirm or (lambda user, password: user.check_password(password))
    if not password or not check(user, password):
        raise ServiceError(
            "password_wrong", "That is not your password; your account was not deleted.", status_code=400
        )

    def delete() -> Contributor:
        locked = Contributor.objects.select_for_update().get(pk=contributor.pk)
        now = timezone.now()
        clips = Clip.objects.select_for_update().filter(contributor=locked, withdrawn_at__isnull=True)
        names = [name for name in clips.values_list("audio", flat=True) if name]
        ids = list(clips.values_list("pk", flat=True))
        # Pending clips leave the queue for good; decided ones keep their status, so the engine is unchanged.
        Clip.objects.filter(pk__in=ids, status=ClipStatus.PENDING, status_fixed=False).update(
            status=ClipStatus.DISCARDED, status_fixed=True, updated_at=now
        )
        Clip.objects.filter(pk__in=ids).update(withdrawn_at=now, audio="", updated_at=now)
        ValidationAssignment.objects.filter(outcome=AssignmentOutcome.OPEN, clip_id__in=ids).update(
            outcome=AssignmentOutcome.WITHDRAWN, closed_at=now
        )
        ValidationAssignment.objects.filter(outcome=AssignmentOutcome.OPEN, trustee=locked).update(
            outcome=AssignmentOutcome.WITHDRAWN, closed_at=now
        )
        ClipSkip.objects.filter(contributor=locked).delete()
        ClipReport.objects.filter(reporter=locked).update(note="")
        PromptReport.objects.filter(reporter=locked).update(note="")
        for field, value in _ANONYMISED.items():
            setattr(locked, field, value)
        locked.user, locked.deleted_at = None, now
        locked.save()
        user.delete()  # the login, its tokens and its leaderboard submissions
        transaction.on_commit(lambda: _delete_files(names))
        return locked

    return trust_write_recomputed(delete, trigger="account_deletion")


def _delete_files(names: list[str]) -> None:
    from contributors.services.clips import _delete_file_if_unreferenced

    for name in names:
        _delete_file_if_unreferenced(name)
