"""POST /resources with a multipart `file`: text, Markdown, HTML and PDF become `content`."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.resources.models import Resource

pytestmark = pytest.mark.django_db


def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF showing `lines` in Helvetica."""
    text_ops = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {text_ops} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def upload(client, name, data, content_type, **fields):
    file = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post("/resources", {"file": file, **fields}, format="multipart")


def test_text_upload_title_defaults_to_file_name(alice_client):
    response = upload(alice_client, "hello.txt", b"Plain words here.", "text/plain", id="files/hello")
    assert response.status_code == 201, response.json()
    resource = response.json()["resource"]
    assert resource["id"] == "files/hello"
    assert resource["title"] == "hello.txt"
    assert resource["type"] == "file"
    assert resource["content"] == "Plain words here."
    assert resource["metadata"]["file"]["name"] == "hello.txt"
    assert resource["metadata"]["file"]["kind"] == "text"
    assert resource["metadata"]["created_at"].endswith("Z")


def test_id_defaults_to_file_name_and_fields_are_kept(alice_client):
    response = upload(
        alice_client, "guide.md", b"# Guide\n\nUse **bold** text.", "application/octet-stream",
        title="The guide", type="doc", metadata='{"team": "docs"}',
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    resource = response.json()["resource"]
    assert resource["id"] == "guide.md"
    assert resource["title"] == "The guide"
    assert resource["type"] == "doc"
    assert resource["content"].startswith("# Guide")
    assert resource["metadata"]["team"] == "docs"
    assert resource["metadata"]["file"]["kind"] == "markdown"


def test_html_is_stripped_to_text(alice_client):
    html = (
        b"<html><head><title>T</title><style>p{color:red}</style><script>alert('x')</script></head>"
        b"<body><h1>Heading</h1><p>First &amp; second</p><ul><li>one</li><li>two</li></ul></body></html>"
    )
    response = upload(alice_client, "page.html", html, "text/html", id="web/page")
    assert response.status_code == 201, response.json()
    content = response.json()["resource"]["content"]
    assert "Heading" in content and "First & second" in content and "one" in content
    assert "<" not in content and "alert" not in content and "color" not in content


def test_pdf_text_is_extracted_and_searchable(alice_client):
    pdf = make_pdf(["Quarterly volcano survey", "Basalt samples from the northern ridge"])
    response = upload(alice_client, "survey.pdf", pdf, "application/pdf", id="reports/survey")
    assert response.status_code == 201, response.json()
    content = response.json()["resource"]["content"]
    assert "Quarterly volcano survey" in content
    assert "Basalt samples" in content
    results = alice_client.get("/resources/search?q=basalt").json()["results"]
    assert results[0]["id"] == "reports/survey"


def test_put_with_a_file_replaces_content(alice_client):
    upload(alice_client, "a.txt", b"old text", "text/plain", id="doc")
    response = alice_client.put(
        "/resources/doc", {"file": SimpleUploadedFile("b.txt", b"new text", "text/plain")}, format="multipart"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["resource"]["content"] == "new text"
    assert response.json()["resource"]["title"] == "a.txt"
    assert response.json()["resource"]["metadata"]["file"]["name"] == "b.txt"


def test_unsupported_type_is_415_and_stores_nothing(alice_client, alice):
    response = upload(alice_client, "image.png", b"\x89PNG\r\n\x1a\n....", "image/png", id="img")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert "image/png" in response.json()["error"]
    response = upload(alice_client, "archive.zip", b"PK..", "application/octet-stream", id="zip")
    assert response.status_code == 415
    assert not Resource.objects.for_tenant(alice).exists()


def test_damaged_pdf_and_bad_text_encoding_are_422(alice_client, alice):
    assert upload(alice_client, "x.pdf", b"%PDF-1.4 garbage", "application/pdf", id="x").status_code == 422
    assert upload(alice_client, "x.txt", b"\xff\xfe\xfa bad", "text/plain", id="y").status_code == 422
    assert not Resource.objects.for_tenant(alice).exists()


def test_oversize_upload_is_413(alice_client, alice, settings):
    settings.BODY_LIMITS = {"/resources": 4096}
    settings.RESOURCES_MAX_UPLOAD_BYTES = 4096
    response = upload(alice_client, "big.txt", b"a" * 10_000, "text/plain", id="big")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not Resource.objects.for_tenant(alice).exists()


def test_default_limit_is_20_mib(settings):
    assert settings.RESOURCES_MAX_UPLOAD_BYTES == 20 * 1024 * 1024
    assert settings.BODY_LIMITS["/resources"] == 20 * 1024 * 1024


def test_file_and_content_together_is_400(alice_client):
    response = upload(alice_client, "a.txt", b"x", "text/plain", id="a", content="also this")
    assert response.status_code == 400
    assert "content" in response.json()["details"]


def test_bad_metadata_in_form_is_400(alice_client):
    response = upload(alice_client, "a.txt", b"x", "text/plain", id="a", metadata="[1, 2]")
    assert response.status_code == 400
    assert "metadata" in response.json()["details"]
