"""Turning uploaded files into text: plain text, Markdown, HTML (tags stripped) and PDF (pypdf).

The kind of file is decided by its declared content type, or by its extension when the client sent
a generic one (curl sends `application/octet-stream` for `.md`). Anything else is a 415.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

KIND_BY_CONTENT_TYPE = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
}
KIND_BY_EXTENSION = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
GENERIC_CONTENT_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
SUPPORTED = "text (.txt), Markdown (.md), HTML (.html) or PDF (.pdf)"


@dataclass(frozen=True)
class ExtractedFile:
    kind: str
    text: str


def file_kind(*, file_name: str, content_type: str) -> str:
    declared = content_type.split(";")[0].strip().lower()
    kind = KIND_BY_CONTENT_TYPE.get(declared)
    if kind is None and declared in GENERIC_CONTENT_TYPES | {"text/plain"}:
        kind = KIND_BY_EXTENSION.get(PurePath(file_name).suffix.lower())
    if kind is None:
        raise ApplicationError(
            f"Unsupported file type {declared or 'unknown'!r} ({file_name!r}); upload {SUPPORTED}",
            code="unsupported_media_type",
            status=415,
        )
    return kind


def _charset(content_type: str) -> str:
    match = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def _decode(data: bytes, content_type: str) -> str:
    charset = _charset(content_type)
    try:
        return data.decode("utf-8-sig" if charset.lower() in ("utf-8", "utf8") else charset)
    except (UnicodeDecodeError, LookupError):
        raise ApplicationError(
            f"The file is not valid {charset} text; send UTF-8 or name the charset in its content type",
            code="unprocessable_file",
            status=422,
        ) from None


class _TextFromHtml(HTMLParser):
    """Keeps the visible text: drops script/style, and breaks lines at block elements."""

    SKIP = {"script", "style", "noscript", "template", "head"}
    BLOCKS = {
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "title", "hr", "dd", "dt",
    }  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    return tidy_text("".join(parser.parts))


def pdf_to_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ApplicationError(
                "The PDF is encrypted; upload an unencrypted copy", code="unprocessable_file", status=422
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except ApplicationError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        logger.info("unreadable PDF: %s", exc)
        raise ApplicationError(
            "The PDF could not be read (damaged or not a PDF)", code="unprocessable_file", status=422
        ) from None
    return tidy_text("\n\n".join(pages))


def tidy_text(text: str) -> str:
    """Collapse runs of blank lines and trailing spaces; PostgreSQL text cannot hold NUL."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def extract_text(*, data: bytes, file_name: str, content_type: str) -> ExtractedFile:
    kind = file_kind(file_name=file_name, content_type=content_type)
    if kind == "pdf":
        return ExtractedFile(kind=kind, text=pdf_to_text(data))
    text = _decode(data, content_type)
    if kind == "html":
        return ExtractedFile(kind=kind, text=html_to_text(text))
    return ExtractedFile(kind=kind, text=text.replace("\x00", ""))


def uploaded_file_text(upload: UploadedFile) -> tuple[str, dict[str, Any]]:
    """An uploaded file's text and what `metadata.file` records of it (POST /resources and the
    console's upload): 413 over RESOURCES_MAX_UPLOAD_BYTES, 415 for a kind it cannot read."""
    limit = settings.RESOURCES_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise ApplicationError(
            f"The file is {upload.size} bytes; the limit is {limit} bytes",
            code="payload_too_large",
            status=413,
            extra={"limit_bytes": limit},
        )
    name = upload.name or "upload"
    content_type = upload.content_type or ""
    extracted = extract_text(data=upload.read(), file_name=name, content_type=content_type)
    info = {"name": name, "content_type": content_type, "size_bytes": upload.size, "kind": extracted.kind}
    return extracted.text, info
