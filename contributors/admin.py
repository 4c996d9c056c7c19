"""Admin for moderators: prompts, the lexicon, clips with a player, votes, contributors."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from contributors.models import Clip, ClipReport, Contributor, LexiconEntry, Prompt, TrustRecompute, Vote


@admin.register(Contributor)
class ContributorAdmin(admin.ModelAdmin):
    list_display = ["speaker_id", "user", "trust", "is_trustee", "is_founding_trustee", "gender", "age_band"]
    list_filter = ["is_trustee", "is_founding_trustee", "gender", "age_band"]
    search_fields = ["speaker_id", "user__username", "accent"]
    # Founders are named with `manage.py founders`, which recomputes trust; the engine owns the rest.
    readonly_fields = ["speaker_id", "created_at", "trust", "is_trustee", "is_founding_trustee"]
    raw_id_fields = ["user"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "text", "prompt_type", "is_active", "source"]
    list_filter = ["prompt_type", "is_active", "source"]
    search_fields = ["text", "normalised_text"]
    readonly_fields = ["normalised_text", "words", "phones", "created_at"]
    actions = ["activate", "deactivate"]

    @admin.action(description="Activate the selected prompts")
    def activate(self, request, queryset):
        queryset.update(is_active=True)

    @admin.action(description="Deactivate the selected prompts (no new recordings)")
    def deactivate(self, request, queryset):
        queryset.update(is_active=False)


@admin.register(LexiconEntry)
class LexiconEntryAdmin(admin.ModelAdmin):
    list_display = ["word", "phones", "source"]
    search_fields = ["word"]


class VoteInline(admin.TabularInline):
    """Every vote on the clip, and whether it counts now (its voter is a trustee): why the clip has its status."""

    model = Vote
    fk_name = "clip"
    extra = 0
    can_delete = False
    fields = ["voter", "verdict", "counted", "voter_trust", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(boolean=True, description="Counted")
    def counted(self, vote: Vote) -> bool:
        return vote.voter.is_trustee

    @admin.display(description="Voter trust")
    def voter_trust(self, vote: Vote) -> str:
        return f"{vote.voter.trust:.3f}"


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = ["id", "contributor", "prompt", "status", "score", "votes_counted", "duration_s", "provenance"]
    list_filter = ["status", "provenance", "status_fixed"]
    search_fields = ["sha256", "contributor__speaker_id", "prompt__text"]
    raw_id_fields = ["contributor", "prompt"]
    readonly_fields = [
        "player", "sha256", "audio", "duration_s", "original_format", "original_sample_rate",
        "original_channels", "original_bytes", "rms_dbfs", "peak_dbfs", "clipping_ratio", "speech_ratio",
        "snr_db", "analysed_at", "created_at", "updated_at", "status", "score", "votes_counted",
        "votes_valid_counted", "status_fixed", "status_explanation",
    ]  # fmt: skip
    inlines = [VoteInline]

    @admin.display(description="Why this status")
    def status_explanation(self, obj: Clip) -> str:
        if obj.status_fixed:
            return f"Imported as {obj.status}; votes do not change it."
        return (
            f"{obj.votes_valid_counted} valid of {obj.votes_counted} counted votes (votes of current trustees); "
            f"Wilson lower bound {obj.score:.3f}."
        )

    @admin.display(description="Audio")
    def player(self, obj: Clip) -> str:
        if not obj.pk:
            return "-"
        url = reverse("clip-audio", args=[obj.pk])
        return format_html('<audio controls preload="none" src="{}"></audio>', url)


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["id", "clip", "voter", "verdict", "created_at"]
    list_filter = ["verdict"]
    raw_id_fields = ["clip", "voter"]


@admin.register(ClipReport)
class ClipReportAdmin(admin.ModelAdmin):
    list_display = ["id", "clip", "reporter", "reason", "resolved", "created_at"]
    list_filter = ["reason", "resolved"]
    raw_id_fields = ["clip", "reporter"]


@admin.register(TrustRecompute)
class TrustRecomputeAdmin(admin.ModelAdmin):
    list_display = ["started_at", "trigger", "seconds", "iterations", "clips_changed", "trustees", "cycle_resolved"]

    def has_add_permission(self, request) -> bool:
        return False
