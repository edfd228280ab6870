"""The operators' admin for resources: create, edit, upload, delete and search, per tenant."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.resources.models import Resource, ResourceChunk
from apps.resources.services import resource_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_create_edit_and_delete_through_the_admin(staff_client, alice):
    response = staff_client.post(
        "/admin/resources/resource/add/",
        {"tenant": alice.pk, "path": "notes/admin", "title": "From the admin", "type": "note",
         "content": "Written by an operator about glaciers.", "metadata": '{"by": "op"}'},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    resource = Resource.objects.for_tenant(alice).get(path="notes/admin")
    assert resource.metadata["by"] == "op" and "created_at" in resource.metadata
    assert ResourceChunk.objects.for_tenant(alice).filter(resource=resource).exclude(embedding=None).exists()

    response = staff_client.post(
        f"/admin/resources/resource/{resource.pk}/change/",
        {"title": "Renamed", "type": "note", "content": "Now about deserts.", "metadata": "{}"},
    )
    assert response.status_code == 302
    resource.refresh_from_db()
    assert resource.title == "Renamed" and resource.content == "Now about deserts."
    assert "updated_at" in resource.metadata
    assert ResourceChunk.objects.for_tenant(alice).get(resource=resource).text == "Now about deserts."

    response = staff_client.post(f"/admin/resources/resource/{resource.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Resource.objects.for_tenant(alice).exists()


def test_upload_through_the_admin(staff_client, alice):
    file = SimpleUploadedFile("page.html", b"<p>Hello <b>admin</b> upload</p>", content_type="text/html")
    response = staff_client.post(
        "/admin/resources/resource/add/",
        {
            "tenant": alice.pk,
            "path": "up/page",
            "title": "",
            "type": "file",
            "metadata": "{}",
            "upload": file,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    resource = Resource.objects.for_tenant(alice).get(path="up/page")
    assert resource.title == "page.html"
    assert resource.content == "Hello admin upload"


def test_admin_refuses_bad_ids_duplicates_and_unsupported_files(staff_client, alice, charlie):
    resource_create(tenant=alice, resource_id="taken", title="T")
    for path in ("search", "a//b", "taken"):
        response = staff_client.post(
            "/admin/resources/resource/add/",
            {"tenant": alice.pk, "path": path, "title": "T", "metadata": "{}"},
        )
        assert response.status_code == 200  # the form again, with the error
        assert b"errorlist" in response.content
    file = SimpleUploadedFile("x.png", b"\x89PNG", content_type="image/png")
    response = staff_client.post(
        "/admin/resources/resource/add/",
        {"tenant": alice.pk, "path": "img", "title": "T", "metadata": "{}", "upload": file},
    )
    assert b"Unsupported file type" in response.content
    # The same id in another tenant is fine.
    response = staff_client.post(
        "/admin/resources/resource/add/",
        {"tenant": charlie.pk, "path": "taken", "title": "T", "metadata": "{}"},
    )
    assert response.status_code == 302
    assert Resource.objects.for_tenant(alice).count() == 1


def test_admin_search_is_scoped_to_the_chosen_tenant(staff_client, alice, charlie):
    resource_create(
        tenant=alice, resource_id="a/glacier", title="Glaciers", content="Ice sheets and glaciers."
    )
    resource_create(
        tenant=charlie, resource_id="c/glacier", title="Glaciers too", content="Glaciers and ice."
    )
    response = staff_client.get("/admin/resources/resource/search/", {"tenant": alice.pk, "q": "glacier"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "a/glacier" in page and "c/glacier" not in page
    listing = staff_client.get(f"/admin/resources/resource/?tenant__id__exact={alice.pk}").content.decode()
    assert "a/glacier" in listing and "c/glacier" not in listing


def test_add_form_starts_in_the_tenant_the_list_is_filtered_to(staff_client, alice):
    response = staff_client.get(
        f"/admin/resources/resource/add/?_changelist_filters=tenant__id__exact%3D{alice.pk}"
    )
    assert response.status_code == 200
    assert f'<option value="{alice.pk}" selected>' in response.content.decode()
