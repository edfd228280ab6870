"""/openapi.json: a multipart form for /resources carries at least one field.

An empty form can create or change nothing, and Daphne's HTTP layer (Twisted) refuses a multipart
body with no part before the request reaches Django, with a bare 400 (no JSON): the document says
what a client must send rather than promise an answer the platform cannot give.
"""

from __future__ import annotations

from typing import Any


def document_upload_form(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    upload = result.get("components", {}).get("schemas", {}).get("ResourceUpload")
    if upload is not None:
        upload["minProperties"] = 1
    return result
