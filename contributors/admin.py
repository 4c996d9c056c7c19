"""Admin for moderators: prompts, the lexicon, clips with a player, votes, contributors."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from contributors.models import (
    Clip,
    ClipReport,
    Contributor,
    CorpusSource,
    LexiconEntry,
    Prompt,
    PromptReport,
    ProposalReview,
    SentenceProposal,
    TrustRecompute,
    ValidationAssignment,
    Vote,
)
from contributors.selectors import trust_explanation
from contributors.services.accounts import FREE_TEXT_FIELDS
from contributors.services.clips import clip_withdraw
from contributors.services.prompt_reports import prompt_reports_resolve
from contributors.services.trust import founders_set
from core.errors import ServiceError
from core.inputs import validate_printable


class ContributorAdminForm(forms.ModelForm):
    """The profile's free text goes into release metadata: the same printable-text rule as the sign-up and the
    profile page (core.inputs)."""

    class Meta:
        model = Contributor
        fields = ["user", "age_band", "gender", "accent", "first_language", "vote_allowance"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in FREE_TEXT_FIELDS:
            if name in self.fields:
                self.fields[name].validators.append(validate_printable)


@admin.register(Contributor)
class ContributorAdmin(admin.ModelAdmin):
    form = ContributorAdminForm
    list_display = [
        "speaker_id", "user", "trust", "is_trustee", "is_founding_trustee", "vote_allowance", "gender", "age_band",
    ]  # fmt: skip
    list_filter = ["is_trustee", "is_founding_trustee", "gender", "age_band"]
    search_fields = ["speaker_id", "user__username", "accent"]
    # Founders are named and removed with the actions below (or `manage.py founders`), which recompute trust;
    # the engine owns trust and trustee status. The vote allowance is the operator's to set.
    # Consent is the contributor's own act, recorded when given (the sign-up and profile services): operators
    # see it but never set or move it. The account a profile belongs to is fixed once made.
    readonly_fields = [
        "speaker_id", "created_at", "trust", "is_trustee", "is_founding_trustee", "trust_explanation",
        "cc0_consent_at", "guardian_consent_at",
    ]  # fmt: skip
    raw_id_fields = ["user"]
    actions = ["name_founders", "remove_founders"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [*self.readonly_fields, "user"] if obj is not None else list(self.readonly_fields)

    @admin.action(description="Name as founding trustees (recomputes trust)")
    def name_founders(self, request, queryset):
        self._founders(request, queryset, founding=True)

    @admin.action(description="Remove founding trustee status (recomputes trust)")
    def remove_founders(self, request, queryset):
        self._founders(request, queryset, founding=False)

    def _founders(self, request, queryset, *, founding: bool) -> None:
        usernames = list(queryset.values_list("user__username", flat=True))
        try:
            changed = founders_set(usernames=usernames, founding=founding)
        except ServiceError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return
        trustees = sum(contributor.is_trustee for contributor in changed)
        verb = "named founding trustees" if founding else "no longer founders"
        self.message_user(request, f"{len(changed)} contributors {verb}; {trustees} of them trustees now.")

    @admin.display(description="Why this trust")
    def trust_explanation(self, obj: Contributor) -> str:
        if not obj.pk:
            return "-"
        explanation = trust_explanation(contributor=obj)
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">clip {}</a></td><td>{}</td><td>{} valid of {} counted</td><td>{}</td></tr>',
            (
                (reverse("admin:contributors_clip_change", args=[c.pk]), c.pk, c.status, c.votes_valid_counted,
                 c.votes_counted, f"{c.score:.3f}")
                for c in explanation.clips
            ),
        )  # fmt: skip
        return format_html(
            "<p>{}</p><table><tr><th>clip</th><th>status</th><th>counted votes (current trustees)</th>"
            "<th>Wilson bound</th></tr>{}</table><p>Votes cast: {} ({} on clips now valid); quota left {}.</p>",
            explanation.summary,
            rows,
            explanation.votes_cast,
            explanation.votes_on_valid,
            explanation.quota_left,
        )


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "text", "prompt_type", "is_active", "held_for_review", "source"]
    list_filter = ["prompt_type", "is_active", "held_for_review", "source"]
    search_fields = ["text", "normalised_text"]
    readonly_fields = ["normalised_text", "words", "phones", "created_at"]
    actions = ["activate", "deactivate"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        # Clips record what was read: a prompt's text (and its words and phones, derived from it when it was
        # created) never changes under them. A wrong sentence is deactivated and written again.
        return [*self.readonly_fields, "text"] if obj is not None else list(self.readonly_fields)

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


@admin.register(CorpusSource)
class CorpusSourceAdmin(admin.ModelAdmin):
    """Read here; stated with `manage.py import_corpus` or `corpus_source`, which check the licence is one a
    release can carry (core.licences)."""

    list_display = ["name", "licence", "url", "clip_count", "updated_at"]
    readonly_fields = ["name", "licence", "url", "citation", "created_at", "updated_at"]
    search_fields = ["name"]

    @admin.display(description="Clips")
    def clip_count(self, source: CorpusSource) -> int:
        return source.clips.count()

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    """A clip is a record: who read which prompt, the audio and its hash, where it came from (provenance), and
    what the votes made of it. Operators look, and take a clip down with the withdraw action (the author's own
    withdrawal: audio deleted, out of every future release); nothing is edited, added or deleted here."""

    list_display = [
        "id", "contributor", "prompt", "status", "score", "votes_counted", "duration_s", "provenance", "source",
    ]  # fmt: skip
    list_filter = ["status", "provenance", "source", "status_fixed"]
    search_fields = ["sha256", "contributor__speaker_id", "prompt__text"]
    readonly_fields = [
        "player", "contributor", "prompt", "provenance", "sha256", "audio", "duration_s", "original_format",
        "original_sample_rate", "original_channels", "original_bytes", "rms_dbfs", "peak_dbfs", "clipping_ratio",
        "speech_ratio", "snr_db", "analysed_at", "created_at", "updated_at", "withdrawn_at", "status", "score",
        "votes_counted", "votes_valid_counted", "status_fixed", "status_explanation", "source",
    ]  # fmt: skip
    inlines = [VoteInline]
    actions = ["withdraw"]

    def has_add_permission(self, request) -> bool:
        return False  # clips come from uploads and imports, which check and normalise the audio

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a deleted clip takes its votes and its place in trust and releases with it: withdraw

    def has_withdraw_permission(self, request) -> bool:
        # The form is view-only for everyone; taking a clip down still needs the right to change clips.
        return request.user.has_perm("contributors.change_clip")

    @admin.action(description="Withdraw the selected clips (audio deleted, out of future releases)",
                  permissions=["withdraw"])  # fmt: skip
    def withdraw(self, request, queryset) -> None:
        for clip in queryset.select_related("contributor"):
            try:
                clip_withdraw(contributor=clip.contributor, clip_id=clip.pk)
            except ServiceError as exc:
                self.message_user(request, f"Clip {clip.pk}: {exc.message}", messages.ERROR)
                continue
            self.log_change(request, clip, "Withdrawn by an operator.")
            self.message_user(request, f"Clip {clip.pk} withdrawn.")

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
    """Votes are trustees' judgements and the trust engine's input: shown, never added, edited or deleted here."""

    list_display = ["id", "clip", "voter", "verdict", "reason", "created_at"]
    list_filter = ["verdict", "reason"]
    readonly_fields = ["clip", "voter", "verdict", "reason", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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


@admin.register(ValidationAssignment)
class ValidationAssignmentAdmin(admin.ModelAdmin):
    """Which clip the server handed to which trustee, and what became of it (read only)."""

    list_display = ["id", "clip", "trustee", "outcome", "created_at", "expires_at", "closed_at"]
    list_filter = ["outcome"]
    raw_id_fields = ["clip", "trustee"]
    readonly_fields = ["clip", "trustee", "outcome", "created_at", "expires_at", "closed_at"]

    def has_add_permission(self, request) -> bool:
        return False


class OpenReportFilter(admin.SimpleListFilter):
    """Open reports first: the operators' queue is what nobody has decided yet."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved"), ("all", "All")]

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["query_string"] == changelist.get_query_string(remove=[self.parameter_name]):
                continue  # the default view is "Open": no separate "All" entry without a value
            yield choice

    def queryset(self, request, queryset):
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(resolution="")
        if value == "resolved":
            return queryset.exclude(resolution="")
        return queryset


@admin.register(PromptReport)
class PromptReportAdmin(admin.ModelAdmin):
    """Readers' reports on sentences. Deciding acts on the reported prompt and every open report on it: dismiss
    (served again) or retire (no new recordings; recorded clips stay)."""

    list_display = ["id", "prompt_text", "reason", "note", "open_reports", "held", "resolution", "created_at"]
    list_filter = [OpenReportFilter, "reason"]
    list_select_related = ["prompt"]
    search_fields = ["prompt__text", "note"]
    raw_id_fields = ["prompt", "reporter"]
    readonly_fields = ["prompt", "reporter", "reason", "note", "resolution", "resolved_at", "created_at"]
    actions = ["dismiss", "retire"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="sentence")
    def prompt_text(self, report: PromptReport) -> str:
        return report.prompt.text

    def get_queryset(self, request):
        # One query for the list: each row shows how many open reports its prompt has.
        return (
            super()
            .get_queryset(request)
            .annotate(open_count=Count("prompt__reports", filter=Q(prompt__reports__resolution="")))
        )

    @admin.display(description="open reports", ordering="open_count")
    def open_reports(self, report: PromptReport) -> int:
        return report.open_count

    @admin.display(boolean=True, description="held")
    def held(self, report: PromptReport) -> bool:
        return report.prompt.held_for_review

    @admin.action(description="Dismiss: keep the sentence and serve it again")
    def dismiss(self, request, queryset) -> None:
        count = prompt_reports_resolve(prompt_ids=queryset.values_list("prompt_id", flat=True), retire=False)
        self.message_user(request, f"{count} sentence(s) kept; their open reports are dismissed.", messages.SUCCESS)

    @admin.action(description="Retire the sentence: no new recordings")
    def retire(self, request, queryset) -> None:
        count = prompt_reports_resolve(prompt_ids=queryset.values_list("prompt_id", flat=True), retire=True)
        self.message_user(request, f"{count} sentence(s) retired.", messages.SUCCESS)


class ProposalReviewInline(admin.TabularInline):
    model = ProposalReview
    extra = 0
    fields = ["reviewer", "approve", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SentenceProposal)
class SentenceProposalAdmin(admin.ModelAdmin):
    """Volunteers' sentences; trustees decide them on /sentences/ (two approvals make a prompt)."""

    list_display = ["id", "text", "status", "author", "prompt", "created_at", "decided_at"]
    list_filter = ["status"]
    search_fields = ["text", "normalised_text"]
    readonly_fields = [
        "author",
        "text",
        "normalised_text",
        "words",
        "phones",
        "status",
        "prompt",
        "created_at",
        "decided_at",
    ]
    inlines = [ProposalReviewInline]

    def has_add_permission(self, request) -> bool:
        return False
