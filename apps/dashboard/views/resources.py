"""The Resources page: a team's documents by prefix, hybrid search with snippets, one resource to
view, edit or delete, and uploads with a progress bar (static/dashboard/upload.js).

Reads go through apps/resources' selectors and `resource_search` with the prefixes the role may
read; writes through its services after the scope check `resources.<id>.write` (members: 403), with
bodies validated by the serializers of /resources. A write of long content is embedded by a job:
the page says so, as the API's 202 does, and shows the job's status live.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from apps.core.errors import ApplicationError
from apps.core.serializers import validated
from apps.dashboard.teams import TeamPage
from apps.dashboard.views.data import (
    PAGE_SIZE,
    SERVICE_ERRORS,
    ConsoleForm,
    TextArea,
    as_application_error,
    is_fragment,
    may_write,
    parse_json,
    pretty,
    raise_for_page,
    require,
    show_errors,
)
from apps.resources import selectors, services
from apps.resources.ids import MAX_ID_LENGTH, resource_id_problem
from apps.resources.indexing import indexing_state
from apps.resources.ingestion import uploaded_file_text
from apps.resources.models import Resource
from apps.resources.search import resource_search
from apps.resources.serializers import (
    MAX_QUERY,
    MAX_TITLE,
    MAX_TYPE,
    SEARCH_MAX_LIMIT,
    ResourceCreateSerializer,
    ResourceFieldsSerializer,
    ResourceSearchQuerySerializer,
    ResourceUploadSerializer,
)
from apps.tenants.access import allows, readable
from apps.tenants.scopes import Action

UPLOAD_TYPE = "file"  # as POST /resources names an uploaded file's type
JOB_MESSAGE = "searchable by words now, by meaning when the job ends"


class ListFilterForm(ConsoleForm):
    # Named as GET /resources' ?prefix= (the form metaclass takes it out of the class).
    prefix = forms.CharField(  # type: ignore[assignment]
        label="Id prefix", required=False, max_length=MAX_ID_LENGTH, help_text="e.g. notes/"
    )
    type = forms.CharField(label="Type", required=False, max_length=MAX_TYPE)


class ResourceSearchForm(ConsoleForm):
    q = forms.CharField(label="Search words and meaning", max_length=MAX_QUERY)
    search_type = forms.CharField(label="Only of type", required=False, max_length=MAX_TYPE)
    search_prefix = forms.CharField(label="Only ids starting with", required=False, max_length=MAX_ID_LENGTH)
    limit = forms.IntegerField(label="Results", min_value=1, max_value=SEARCH_MAX_LIMIT, initial=10)


class ResourceFieldsForm(ConsoleForm):
    title = forms.CharField(label="Title", max_length=MAX_TITLE, strip=False)
    type = forms.CharField(
        label="Type", max_length=MAX_TYPE, required=False, help_text="document when left empty"
    )
    content = TextArea(label="Content", rows=16)
    metadata = TextArea(
        label="Metadata (JSON object)", rows=5, help_text="Merged into what is stored; created_at is kept"
    )


class ResourceCreateForm(ResourceFieldsForm):
    id = forms.CharField(
        label="Id", max_length=MAX_ID_LENGTH, strip=False, help_text="A path such as notes/hello"
    )
    field_order = ["id", "title", "type", "content", "metadata"]


class UploadForm(ConsoleForm):
    file = forms.FileField(label="File", help_text="Text, Markdown, HTML or PDF", allow_empty_file=True)
    id = forms.CharField(
        label="Id", required=False, max_length=MAX_ID_LENGTH, help_text="The file's name when left empty"
    )
    title = forms.CharField(label="Title", required=False, max_length=MAX_TITLE)
    type = forms.CharField(
        label="Type", required=False, max_length=MAX_TYPE, help_text="file when left empty"
    )


def resource_url(team: str, resource_id: str, name: str = "dashboard:resource") -> str:
    return f"{reverse(name, kwargs={'team': team})}?{urlencode({'id': resource_id})}"


def job_of(resource: Resource) -> Any:
    return resource.index_job if resource.index_job_id is not None else None


class ResourceView(TeamPage):
    def readable_ids(self) -> list[str] | None:
        return readable(self.principal, "resources")

    def list_context(self, request: HttpRequest) -> dict[str, Any]:
        """The list for ?prefix=, ?type= and ?cursor=, as GET /resources lists them for this role."""
        form = ListFilterForm(request.GET or None)
        prefix = kind = ""
        if form.is_bound and form.is_valid():
            prefix, kind = form.cleaned_data["prefix"], form.cleaned_data["type"]
        rows: list[Resource] = []
        next_cursor = None
        if not form.errors:
            try:
                page = selectors.resource_list(
                    tenant=self.team,
                    readable_prefixes=self.readable_ids(),
                    cursor=request.GET.get("cursor") or None,
                    limit=PAGE_SIZE,
                    type=kind or None,
                    prefix=prefix or None,
                )
                rows, next_cursor = page.items, page.next_cursor
            except SERVICE_ERRORS as exc:
                show_errors(form, as_application_error(exc), {"cursor": "prefix"})
        filters = {"prefix": prefix, "type": kind}
        return {
            "list_form": form,
            "prefix": prefix,
            "rows": [{"resource": row, "url": resource_url(self.team.slug, row.path)} for row in rows],
            "next_query": urlencode({**filters, "cursor": next_cursor}) if next_cursor else None,
            "first_query": urlencode(filters),
            "paged": bool(request.GET.get("cursor")),
        }

    def search_context(self, request: HttpRequest) -> dict[str, Any]:
        """The hybrid search of GET /resources/search, with each hit's snippet."""
        form = ResourceSearchForm(request.GET)
        hits: list[dict[str, Any]] | None = None
        if form.is_valid():
            data = form.cleaned_data
            query = {
                "q": data["q"],
                "limit": data["limit"],
                "type": data["search_type"],
                "prefix": data["search_prefix"],
            }
            try:
                params = validated(ResourceSearchQuerySerializer, query)
                found = resource_search(
                    tenant=self.team,
                    query=params["q"],
                    readable_prefixes=self.readable_ids(),
                    limit=params.get("limit") or 10,
                    type=params.get("type") or None,
                    prefix=params.get("prefix") or None,
                )
                hits = [
                    {**hit.as_result(), "url": resource_url(self.team.slug, hit.resource.path)}
                    for hit in found
                ]
            except SERVICE_ERRORS as exc:
                show_errors(
                    form, as_application_error(exc), {"type": "search_type", "prefix": "search_prefix"}
                )
        return {"search_form": form, "hits": hits or [], "searched": hits is not None}


class ResourcesPage(ResourceView):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        context = self.list_context(request)
        if "q" in request.GET:
            context.update(self.search_context(request))
        else:
            context.update(search_form=ResourceSearchForm(initial={"limit": 10}), hits=[], searched=False)
        can_write = may_write(self.principal, "resources")
        context.update(can_write=can_write, upload_form=UploadForm() if can_write else None)
        return render(request, "dashboard/resources/index.html", self.team_context(**context))


class ResourceListFragment(ResourceView):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return render(
            request, "dashboard/resources/_list.html", self.team_context(**self.list_context(request))
        )


class ResourceSearchFragment(ResourceView):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return render(
            request, "dashboard/resources/_results.html", self.team_context(**self.search_context(request))
        )


class ResourceItemView(ResourceView):
    def id_from(self, request: HttpRequest) -> str:
        resource_id = request.GET.get("id", "")
        if resource_id_problem(resource_id) is not None:
            raise Http404("No such resource")
        return resource_id

    def load(self, resource_id: str, permission: str = "read") -> Resource:
        require(self.principal, Action("resources", permission, resource_id))
        try:
            return selectors.resource_get(tenant=self.team, resource_id=resource_id)
        except ApplicationError as error:
            raise_for_page(error)
            raise


class ResourcePage(ResourceItemView):
    """One resource: content, metadata, and (while its chunks are embedded) its job, live."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        resource = self.load(self.id_from(request))
        writable = allows(self.principal, Action("resources", "write", resource.path))
        context = self.team_context(
            resource=resource,
            metadata=pretty(resource.metadata),
            indexing=indexing_state(resource),
            job=job_of(resource),
            job_message=JOB_MESSAGE,
            can_write=writable,
            edit_url=resource_url(self.team.slug, resource.path, "dashboard:resource-edit"),
            delete_url=resource_url(self.team.slug, resource.path, "dashboard:resource-delete"),
        )
        return render(request, "dashboard/resources/item.html", context)


def written_message(resource: Resource, verb: str) -> str:
    if indexing_state(resource) == "pending":
        return f"{verb} {resource.path}: {JOB_MESSAGE}."
    return f"{verb} {resource.path}."


def _editable_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in metadata.items() if name not in ("created_at", "updated_at")}


class ResourceEditPage(ResourceItemView):
    """A partial update, as PUT /resources/{id}: the fields replace, metadata is merged."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        resource = self.load(self.id_from(request), "write")
        initial = {
            "title": resource.title,
            "type": resource.type,
            "content": resource.content,
            "metadata": pretty(_editable_metadata(resource.metadata)),
        }
        return self.show(request, resource, ResourceFieldsForm(initial=initial))

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        resource = self.load(self.id_from(request), "write")
        form = ResourceFieldsForm(request.POST)
        if form.is_valid():
            metadata = parse_json(form, "metadata", required=False)
            data = {name: form.cleaned_data[name] for name in ("title", "content")}
            if form.cleaned_data["type"]:
                data["type"] = form.cleaned_data["type"]
            if metadata is not None:
                data["metadata"] = metadata
            if not form.errors:
                try:
                    fields = validated(ResourceFieldsSerializer, data)
                    updated = services.resource_update(
                        tenant=self.team, resource_id=resource.path, api_key_id=None, **fields
                    )
                except SERVICE_ERRORS as exc:
                    show_errors(form, as_application_error(exc))
                else:
                    messages.success(request, written_message(updated, "Saved"))
                    return redirect(resource_url(self.team.slug, updated.path))
        return self.show(request, resource, form, status=400)

    def show(
        self, request: HttpRequest, resource: Resource, form: forms.Form, status: int = 200
    ) -> HttpResponse:
        context = self.team_context(
            resource=resource,
            form=form,
            action=resource_url(self.team.slug, resource.path, "dashboard:resource-edit"),
            back=resource_url(self.team.slug, resource.path),
        )
        return render(request, "dashboard/resources/edit.html", context, status=status)


class ResourceDeletePage(ResourceItemView):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        resource = self.load(self.id_from(request), "write")
        context = self.team_context(
            resource=resource,
            action=resource_url(self.team.slug, resource.path, "dashboard:resource-delete"),
            back=resource_url(self.team.slug, resource.path),
        )
        return render(request, "dashboard/resources/delete.html", context)

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        resource_id = self.id_from(request)
        require(self.principal, Action("resources", "write", resource_id))
        try:
            services.resource_delete(tenant=self.team, resource_id=resource_id)
        except ApplicationError as error:
            raise_for_page(error)
            raise
        messages.success(request, f"Deleted {resource_id}.")
        return redirect("dashboard:resources", team=self.team.slug)


class WriterPage(ResourceView):
    """A page only a role that may write resources opens (members: 403)."""

    def check_writer(self) -> None:
        if not may_write(self.principal, "resources"):
            raise PermissionDenied("Your role may not write resources")


class ResourceNewPage(WriterPage):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.check_writer()
        return self.show(request, ResourceCreateForm())

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.check_writer()
        form = ResourceCreateForm(request.POST)
        if form.is_valid():
            metadata = parse_json(form, "metadata", required=False)
            data = {name: form.cleaned_data[name] for name in ("id", "title", "content")}
            if form.cleaned_data["type"]:
                data["type"] = form.cleaned_data["type"]
            if metadata is not None:
                data["metadata"] = metadata
            if not form.errors:
                try:
                    fields = validated(ResourceCreateSerializer, data)
                    require(self.principal, Action("resources", "write", fields["id"]))
                    resource = services.resource_create(
                        tenant=self.team,
                        resource_id=fields["id"],
                        title=fields["title"],
                        type=fields.get("type"),
                        content=fields.get("content") or "",
                        metadata=fields.get("metadata") or {},
                    )
                except SERVICE_ERRORS as exc:
                    show_errors(form, as_application_error(exc))
                else:
                    messages.success(request, written_message(resource, "Created"))
                    return redirect(resource_url(self.team.slug, resource.path))
        return self.show(request, form, status=400)

    def show(self, request: HttpRequest, form: forms.Form, status: int = 200) -> HttpResponse:
        return render(request, "dashboard/resources/new.html", self.team_context(form=form), status=status)


class ResourceUploadPage(WriterPage):
    """POST a file (multipart): its text becomes a new resource, as POST /resources with a file.

    The page's script sends it with XMLHttpRequest (progress bar) and shows the fragment this
    answers: 201 created, 202 created with a job (its status live), or the error (4xx)."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.check_writer()
        return render(request, "dashboard/resources/upload.html", self.team_context(upload_form=UploadForm()))

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.check_writer()
        form = UploadForm(request.POST, request.FILES)
        resource: Resource | None = None
        if form.is_valid():
            try:
                resource = self.create(form.cleaned_data)
            except SERVICE_ERRORS as exc:
                show_errors(form, as_application_error(exc))
        if resource is None:
            status = 400
            if is_fragment(request):
                context = self.team_context(upload_form=form)
                return render(request, "dashboard/resources/_uploaded.html", context, status=status)
            return render(
                request, "dashboard/resources/upload.html", self.team_context(upload_form=form), status=status
            )
        if is_fragment(request):
            pending = indexing_state(resource) == "pending"
            context = self.team_context(
                resource=resource,
                url=resource_url(self.team.slug, resource.path),
                job=job_of(resource) if pending else None,
                job_message=JOB_MESSAGE,
                upload_form=None,
            )
            return render(
                request, "dashboard/resources/_uploaded.html", context, status=202 if pending else 201
            )
        messages.success(request, written_message(resource, "Uploaded"))
        return redirect(resource_url(self.team.slug, resource.path))

    def create(self, cleaned: dict[str, Any]) -> Resource:
        upload = cleaned["file"]
        data: dict[str, Any] = {"file": upload}
        data.update({name: cleaned[name] for name in ("id", "title", "type") if cleaned[name]})
        fields = validated(ResourceUploadSerializer, data, creating=True)
        resource_id = str(fields.get("id") or upload.name)
        if resource_id_problem(resource_id) is not None:
            validated(ResourceUploadSerializer, {"id": resource_id}, creating=False)  # its 400
        require(self.principal, Action("resources", "write", resource_id))
        content, file_info = uploaded_file_text(upload)
        return services.resource_create(
            tenant=self.team,
            resource_id=resource_id,
            title=fields.get("title") or upload.name,
            type=fields.get("type") or UPLOAD_TYPE,
            content=content,
            metadata={"file": file_info},
        )
