"""Admin for operators: releases (read-only once built), their files, speakers' splits, and submissions."""

from __future__ import annotations

from django.contrib import admin, messages

from benchmark.leaderboard.services import submission_rerun
from benchmark.models import Release, ReleaseFile, SpeakerSplit, Submission, SubmissionResult
from benchmark.releases.services import release_withdraw
from core.errors import ServiceError


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ["version", "status", "clip_count", "speaker_count", "hours", "created_at", "build_seconds"]
    list_filter = ["status"]
    search_fields = ["version"]
    # Releases are immutable: built by `manage.py release_build` or its task, never edited here, and never
    # deleted: researchers cite them and later releases keep their speakers' splits. One that must come down is
    # withdrawn (the action below): hidden from the public, its files kept.
    readonly_fields = [f.name for f in Release._meta.fields]
    actions = ["withdraw"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Withdraw the selected releases (unlisted and no longer served; files kept)")
    def withdraw(self, request, queryset) -> None:
        for release in queryset:
            try:
                release_withdraw(release_id=release.pk)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            self.log_change(request, release, "Withdrawn.")
            self.message_user(request, f"Release {release.version} withdrawn.")


@admin.register(ReleaseFile)
class ReleaseFileAdmin(admin.ModelAdmin):
    list_display = ["release", "path", "format", "split", "size"]
    list_filter = ["format", "split"]
    search_fields = ["path", "release__version"]
    readonly_fields = ["release", "path", "storage_name", "split", "format", "size", "sha256"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a release's files are part of it: withdraw the release instead


@admin.register(SpeakerSplit)
class SpeakerSplitAdmin(admin.ModelAdmin):
    list_display = ["speaker_id", "split", "first_release", "created_at"]
    list_filter = ["split"]
    search_fields = ["speaker_id"]
    readonly_fields = ["speaker_id", "split", "first_release", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a deleted split would let a hidden speaker be drawn into a public split later


# Shown, all read-only: a result is written by its evaluation only.
_RESULT_FIELDS = (
    "release",
    "succeeded",
    "failure_code",
    "failure_detail",
    "attempts",
    "heartbeat_at",
    "per_hidden",
    "per_public",
    "parameters",
    "depth",
    "rtf_median",
)


class SubmissionResultInline(admin.TabularInline):
    model = SubmissionResult
    extra = 0
    can_delete = False
    fields = _RESULT_FIELDS
    readonly_fields = _RESULT_FIELDS


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    """Operators may mark a submission as a baseline; everything else is the evaluation's record."""

    list_display = ["id", "name", "submitter", "status", "failure_code", "is_baseline", "decoder", "created_at"]
    list_filter = ["status", "is_baseline", "decoder"]
    search_fields = ["name", "submitter__username", "sha256"]
    readonly_fields = [f.name for f in Submission._meta.fields if f.name != "is_baseline"]
    inlines = [SubmissionResultInline]
    actions = ["rerun"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Re-run the evaluation (a succeeded one: on the latest release)")
    def rerun(self, request, queryset) -> None:
        done: dict[str, int] = {}
        for submission_id in queryset.values_list("pk", flat=True):
            try:
                outcome = submission_rerun(submission_id=submission_id)
            except ServiceError as exc:
                self.message_user(request, f"Submission {submission_id}: {exc.message}", messages.ERROR)
                continue
            done[outcome] = done.get(outcome, 0) + 1
        summary = ", ".join(f"{n} {what}" for what, n in sorted(done.items()))
        self.message_user(request, f"Queued: {summary or 'nothing'}.")
