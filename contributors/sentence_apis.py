"""The sentences API: skip or report a prompt while recording, propose sentences, review proposals. Thin: the
work happens in contributors.services.prompt_reports and contributors.services.proposals."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contributors import selectors
from contributors.apis import PromptOutput
from contributors.models import PromptReportReason, SentenceProposal
from contributors.services.accounts import contributor_for_user
from contributors.services.prompt_reports import prompt_report, prompt_skip
from contributors.services.proposals import proposal_review, sentence_propose
from core.errors import ServiceError
from core.inputs import StrictIntegerField
from core.parsers import JSONParser
from core.schema import error_responses


class OnScreenInput(serializers.Serializer):
    on_screen = serializers.ListField(
        child=StrictIntegerField(min_value=1), max_length=50, required=False, default=list,
        help_text="Ids of the prompts already on the reader's screen: the replacement is none of them.",
    )  # fmt: skip


class NextPromptOutput(serializers.Serializer):
    next = PromptOutput(allow_null=True, help_text="Another sentence to read in its place; null when none is left.")


def _on_screen(data, serializer_class=OnScreenInput) -> dict:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        if "on_screen" in serializer.errors:
            raise ServiceError("on_screen_invalid", "on_screen is a list of at most 50 prompt ids.")
        if "note" in serializer.errors:
            raise ServiceError("note_invalid", "The note is plain text.")
        if "reason" in serializer.errors:
            raise ServiceError("reason_invalid", f"Give a reason: one of {', '.join(PromptReportReason.values)}.")
        serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _replacement(request: Request, prompt_id: object, on_screen: list[int]) -> dict:
    keep = {*on_screen}
    if isinstance(prompt_id, str) and prompt_id.isascii() and prompt_id.isdigit():
        keep.add(int(prompt_id))
    prompts = selectors.prompts_next_for(contributor=contributor_for_user(request.user), count=1, exclude=keep)
    return NextPromptOutput({"next": prompts[0] if prompts else None}).data


class PromptSkipApi(APIView):
    """Pass on a sentence while recording: it is not offered to you again; the answer holds another to read."""

    @extend_schema(request=OnScreenInput, responses={200: NextPromptOutput})
    def post(self, request: Request, prompt_id: str) -> Response:
        data = _on_screen(request.data)
        prompt_skip(contributor=contributor_for_user(request.user), prompt_id=prompt_id)
        return Response(_replacement(request, prompt_id, data["on_screen"]))


class PromptReportApi(APIView):
    """Report a sentence to the operators (offensive, misspelt, hard to read, not English, other with a note).
    It is not offered to you again; reports from enough different readers hold it until an operator decides."""

    class PromptReportInput(OnScreenInput):
        reason = serializers.ChoiceField(choices=PromptReportReason.choices)
        # Checked by the service (400 note_invalid, note_too_long past 500 characters), which says which.
        note = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    @extend_schema(request=PromptReportInput, responses={201: NextPromptOutput, **error_responses(409)})
    def post(self, request: Request, prompt_id: str) -> Response:
        data = _on_screen(request.data, self.PromptReportInput)
        prompt_report(
            reporter=contributor_for_user(request.user),
            prompt_id=prompt_id,
            reason=data["reason"],
            note=data.get("note", ""),
        )
        return Response(_replacement(request, prompt_id, data["on_screen"]), status=status.HTTP_201_CREATED)


class ProposalOutput(serializers.ModelSerializer):
    class Meta:
        model = SentenceProposal
        fields = ["id", "text", "words", "status", "prompt", "created_at", "decided_at"]


class SentencesApi(APIView):
    """``POST``: propose a sentence for others to read (checked, then queued for two trustees' approval).
    ``GET``: your proposals, newest first."""

    class ProposeInput(serializers.Serializer):
        text = serializers.CharField(max_length=1000, trim_whitespace=False, allow_blank=True)

    class MineOutput(ProposalOutput):
        approvals = serializers.IntegerField()
        rejections = serializers.IntegerField()

        class Meta(ProposalOutput.Meta):
            fields = [*ProposalOutput.Meta.fields, "approvals", "rejections"]

    @extend_schema(responses={200: MineOutput(many=True)})
    def get(self, request: Request) -> Response:
        proposals = selectors.proposals_of(author=contributor_for_user(request.user))
        return Response(self.MineOutput(proposals, many=True).data)

    @extend_schema(request=ProposeInput, responses={201: ProposalOutput, **error_responses(409, 429)})
    def post(self, request: Request) -> Response:
        serializer = self.ProposeInput(data=request.data)
        if not serializer.is_valid():
            raise ServiceError("sentence_invalid", "Send the sentence as text, at most 1000 characters.")
        proposal = sentence_propose(author=contributor_for_user(request.user), text=serializer.validated_data["text"])
        return Response(ProposalOutput(proposal).data, status=status.HTTP_201_CREATED)


class SentenceReviewQueueApi(APIView):
    """For trustees: proposals waiting for your review (not your own, not yet reviewed by you), oldest first."""

    @extend_schema(responses={200: ProposalOutput(many=True), **error_responses(403)})
    def get(self, request: Request) -> Response:
        contributor = contributor_for_user(request.user)
        if not contributor.is_trustee:
            raise ServiceError("not_trustee", "Only trustees review proposed sentences.", status_code=403)
        return Response(ProposalOutput(selectors.proposals_to_review_for(reviewer=contributor), many=True).data)


class SentenceReviewApi(APIView):
    """Approve or reject a proposal (``{"approve": true}``): two approvals make it a prompt, two rejections
    close it. Your own proposals are refused (403 ``review_own``)."""

    # JSON only: ``approve`` must be a JSON boolean (a form's "true" is refused), so a form body could never succeed.
    parser_classes = [JSONParser]

    class ReviewInput(serializers.Serializer):
        approve = serializers.BooleanField()

    class ReviewOutput(serializers.Serializer):
        proposal = ProposalOutput()
        approvals = serializers.IntegerField()
        rejections = serializers.IntegerField()

    @extend_schema(request=ReviewInput, responses={201: ReviewOutput, **error_responses(409)})
    def post(self, request: Request, proposal_id: str) -> Response:
        approve = request.data.get("approve") if hasattr(request.data, "get") else None
        # JSON true or false only: DRF's BooleanField would also read "yes", "on" or 1.
        outcome = proposal_review(reviewer=contributor_for_user(request.user), proposal_id=proposal_id, approve=approve)
        return Response(self.ReviewOutput(outcome).data, status=status.HTTP_201_CREATED)
