"""Admin for moderators: prompts, the lexicon, clips with a player, votes, contributors."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from contributors.models import Clip, Contributor, LexiconEntry, Prompt, Vote


@admin.register(Contributor)
class ContributorAdmin(admin.ModelAdmin):
    list_display = ["speaker_id", "user", "gender", "age_band", "accent", "is_founding_trustee", "cc0_consent_at"]
    list_filter = ["is_founding_trustee", "gender", "age_band"]
    search_fields = ["speaker_id", "user__username", "accent"]
    readonly_fields = ["speaker_id", "created_at"]
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
    model = Vote
    fk_name = "clip"
    extra = 0
    raw_id_fields = ["voter"]
    readonly_fields = ["created_at"]


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = ["id", "contributor", "prompt", "status", "score", "duration_s", "provenance", "created_at"]
    list_filter = ["status", "provenance"]
    search_fields = ["sha256", "contributor__speaker_id", "prompt__text"]
    raw_id_fields = ["contributor", "prompt"]
    readonly_fields = [
        "player", "sha256", "audio", "duration_s", "original_format", "original_sample_rate",
        "original_channels", "original_bytes", "rms_dbfs", "peak_dbfs", "clipping_ratio", "speech_ratio",
        "snr_db", "analysed_at", "created_at", "updated_at",
    ]  # fmt: skip
    inlines = [VoteInline]

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
