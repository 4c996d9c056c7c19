"""Request parsers: DRF's, with every way a body can fail to parse answered as DRF's 400 ``parse_error``."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

NESTED_TOO_DEEPLY = "JSON parse error - the document is nested too deeply."


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser catches ValueError; a document nested past the interpreter's recursion limit (``[[[...``,
    a few kilobytes) raises RecursionError instead, which reached the client as a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(NESTED_TOO_DEEPLY) from exc
