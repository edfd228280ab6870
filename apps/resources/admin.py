"""Operators' admin for a tenant's resources: create, edit, upload, delete and search.

The admin crosses tenants on purpose (operators), but every resource belongs to exactly one tenant:
the list is filtered by tenant, a new resource is created in the tenant the list is filtered to,
and search runs for one chosen tenant. Writes go through the services, so chunks and embeddings
stay in step with what the API sees.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from apps.core.admin import OperatorAdmin
from apps.core.errors import ApplicationError
from apps.resources import services
from apps.resources.ids import resource_id_problem
from apps.resources.ingestion import extract_text
from apps.resources.models import Resource
from apps.resources.search import resource_search
from apps.tenants.models import Tenant


class ResourceAdminForm(forms.ModelForm):
    upload = forms.FileField(
        required=False,
        help_text="Text, Markdown, HTML or PDF: its text replaces the content "
        "(the title defaults to the file name).",
    )

    class Meta:
        model = Resource
        fields = ["tenant", "path", "title", "type", "content", "metadata"]
        labels = {"path": "Id"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["content"].required = False
        self.fields["metadata"].required = False
        self.fields["type"].required = False
        self.extracted: tuple[str, dict[str, Any]] | None = None

    def clean_path(self) -> str:
        value = self.cleaned_data["path"]
        problem = resource_id_problem(value)
        if problem:
            raise ValidationError(problem)
        return str(value)

    def clean_metadata(self) -> dict[str, Any]:
        value = self.cleaned_data.get("metadata") or {}
        if not isinstance(value, dict):
            raise ValidationError("Metadata must be a JSON object.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("upload")
        if upload is not None:
            try:
                extracted = extract_text(
                    data=upload.read(),
                    file_name=upload.name or "upload",
                    content_type=upload.content_type or "",
                )
            except ApplicationError as exc:
                raise ValidationError({"upload": exc.message}) from None
            self.extracted = (
                extracted.text,
                {"name": upload.name, "content_type": upload.content_type, "size_bytes": upload.size,
                 "kind": extracted.kind},
            )  # fmt: skip
            if not cleaned.get("title"):
                cleaned["title"] = upload.name
        if not cleaned.get("title"):
            self.add_error("title", "A title is required (or upload a file).")
        tenant, resource_id = cleaned.get("tenant"), cleaned.get("path")
        creating = self.instance.pk is None and isinstance(tenant, Tenant) and resource_id
        if creating and Resource.objects.for_tenant(tenant).filter(path=resource_id).exists():  # type: ignore[arg-type]
            self.add_error("path", f"{tenant} already has a resource with this id.")
        for field in ("title", "content", "type"):
            if "\x00" in (cleaned.get(field) or ""):
                self.add_error(field, "May not contain NUL characters.")
        return cleaned


class SearchForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.all())
    q = forms.CharField(label="Query", max_length=1000)
    type = forms.CharField(required=False)
    id_prefix = forms.CharField(label="Id prefix", required=False)


@admin.register(Resource)
class ResourceAdmin(OperatorAdmin):
    form = ResourceAdminForm
    list_display = ["path", "title", "type", "tenant", "updated_at"]
    list_filter = ["tenant", "type"]
    search_fields = ["path", "title"]
    ordering = ["-updated_at"]
    change_list_template = "admin/resources/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Resource]:
        return super().get_queryset(request).select_related("tenant")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["tenant", "path", "created_at", "updated_at"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["tenant", "path", "title", "type", "upload", "content", "metadata"]
        return [*fields, "created_at", "updated_at"] if obj is not None else fields

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        # "Add" from a list filtered to one tenant carries the filter along.
        filters = QueryDict(request.GET.get("_changelist_filters", ""))
        tenant = filters.get("tenant__id__exact") or request.GET.get("tenant")
        if tenant:
            initial["tenant"] = tenant
        initial.setdefault("type", services.DEFAULT_TYPE)
        return initial

    def save_model(self, request: HttpRequest, obj: Resource, form: Any, change: bool) -> None:
        data = form.cleaned_data
        content = data.get("content") or ""
        metadata = dict(data.get("metadata") or {})
        if form.extracted is not None:
            content, metadata["file"] = form.extracted
        try:
            if change:
                saved = services.resource_update(
                    tenant=obj.tenant, resource_id=obj.path, title=data["title"],
                    type=data.get("type") or None, content=content, metadata=metadata,
                )  # fmt: skip
            else:
                saved = services.resource_create(
                    tenant=data["tenant"], resource_id=data["path"], title=data["title"],
                    type=data.get("type") or None, content=content, metadata=metadata,
                )  # fmt: skip
        except ApplicationError as exc:
            messages.error(request, exc.message)
            raise _AbortSave(exc.message) from None
        obj.pk = saved.pk
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _AbortSave:
            # The service refused (a race on the id, embeddings unavailable): nothing was saved;
            # back to the form with the reason shown.
            return HttpResponseRedirect(request.get_full_path())

    def get_urls(self) -> list[URLPattern]:
        search = path(
            "search/", self.admin_site.admin_view(self.search_view), name="resources_resource_search"
        )
        return [search, *super().get_urls()]

    def search_view(self, request: HttpRequest) -> HttpResponse:
        form = SearchForm(request.GET or None)
        hits = None
        if form.is_valid():
            hits = resource_search(
                tenant=form.cleaned_data["tenant"],
                query=form.cleaned_data["q"],
                readable_prefixes=None,
                limit=20,
                type=form.cleaned_data["type"] or None,
                prefix=form.cleaned_data["id_prefix"] or None,
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Search resources (words + meaning)",
            "opts": self.model._meta,
            "form": form,
            "hits": hits,
        }
        return TemplateResponse(request, "admin/resources/search.html", context)


class _AbortSave(Exception):
    pass
