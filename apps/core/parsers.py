"""The request parsers every SLOP view uses: DRF's, plus the input rule of apps/core/text.py.

Set as DRF's DEFAULT_PARSER_CLASSES; a view that needs another parser (multipart uploads, exact
decimals) subclasses these, so the rule holds for every body the platform parses.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from apps.core.text import check_json_text, check_named_text


def refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class JSONParser(parsers.JSONParser):
    """JSON (NaN and Infinity refused) whose every key and string obeys the input rule."""

    def loads(self, text: str) -> Any:
        """Subclasses change how numbers are read here (apps/pay: Decimal)."""
        return json.loads(text, parse_constant=refuse_constant)

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            data = self.loads(stream.read().decode(encoding))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ParseError(f"JSON parse error - {exc}") from None
        check_json_text(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """Multipart forms whose field names, values and file names obey the input rule."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        check_named_text((name, value) for name, values in parsed.data.lists() for value in values)
        check_named_text(
            (name, upload.name or "") for name, uploads in parsed.files.lists() for upload in uploads
        )
        return parsed
