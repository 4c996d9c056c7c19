"""What the anonymous, public parts of the API share: JSON only, no authentication, no session."""

from __future__ import annotations

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from core.throttling import ScopedThrottle


class JsonOnlyNegotiation(BaseContentNegotiation):
    """JSON always: ``?format=`` names a release format here, not DRF's renderer override."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PublicApi(APIView):
    """Anonymous and throttled: releases are open data."""

    content_negotiation_class = JsonOnlyNegotiation
    renderer_classes = [JSONRenderer]
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "downloads"
