"""Admin for operators: releases (read-only once built), their files, and speakers' splits."""

from __future__ import annotations

from django.contrib import admin

from benchmark.models import Release, ReleaseFile, SpeakerSplit


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ["version", "status", "clip_count", "speaker_count", "hours", "created_at", "build_seconds"]
    list_filter = ["status"]
    search_fields = ["version"]
    # Releases are immutable: built by `manage.py release_build` or its task, never edited here.
    readonly_fields = [f.name for f in Release._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ReleaseFile)
class ReleaseFileAdmin(admin.ModelAdmin):
    list_display = ["release", "path", "format", "split", "size"]
    list_filter = ["format", "split"]
    search_fields = ["path", "release__version"]
    readonly_fields = ["release", "path", "storage_name", "split", "format", "size", "sha256"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(SpeakerSplit)
class SpeakerSplitAdmin(admin.ModelAdmin):
    list_display = ["speaker_id", "split", "first_release", "created_at"]
    list_filter = ["split"]
    search_fields = ["speaker_id"]
    readonly_fields = ["speaker_id", "split", "first_release", "created_at"]
