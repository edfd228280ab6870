"""The Tools & jobs page: the team's tools (built-in and webhook) with their safe flag and schema,
registering, editing and deleting webhook tools (admins and owners), and the jobs with their status
live (htmx polls a job's fragment until it is finished) and a cancel button for admins.

Tools are registered through `tool_put`, the service of PUT /tools/{id}: the same validation and
the same guard against private and internal URLs, with the member's principal; jobs are listed by
`tool_jobs_visible` and reached through `job_target`, as GET/DELETE /tools/jobs/{id} reach them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from apps.core.errors import ApplicationError
from apps.core.pagination import paginate
from apps.dashboard.teams import TeamPage
from apps.dashboard.views.data import (
    PAGE_SIZE,
    SERVICE_ERRORS,
    ConsoleForm,
    TextArea,
    as_application_error,
    may_write,
    parse_json,
    pretty,
    raise_for_page,
    require,
    show_errors,
)
from apps.tenants.access import enforce_target
from apps.tenants.roles import Role
from apps.tenants.scopes import Action
from apps.tools.access import job_target, tool_target
from apps.tools.builtins import BUILTINS
from apps.tools.models import Tool, ToolJob
from apps.tools.selectors import may_execute, may_read, tenant_tools, tool_jobs_visible, tool_row_get
from apps.tools.services import tool_delete, tool_id_problem, tool_job_cancel, tool_job_for, tool_put
from apps.tools.spec import ToolSpec

SCHEMA_HELP = (
    'The parameters\' JSON Schema, e.g. {"type": "object", "properties": {"city": {"type": "string"}}}'
)


class WebhookToolForm(ConsoleForm):
    description = TextArea(label="Description", rows=3, max_length=2000)
    url = forms.CharField(
        label="Webhook URL", max_length=2000, help_text="http(s) URL the platform POSTs calls to"
    )
    schema = TextArea(label="Parameters schema (JSON)", rows=8, help_text=SCHEMA_HELP)
    safe = forms.BooleanField(label="Safe (members may run it)", required=False)
    long_running = forms.BooleanField(label="Long-running (runs as a job)", required=False)
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    timeout_seconds = forms.FloatField(label="Timeout (seconds)", required=False, min_value=0.1)

    def body(self) -> dict[str, Any] | None:
        """The PUT /tools/{id} body, or None (with a form error) when the schema is not JSON."""
        data = self.cleaned_data
        body: dict[str, Any] = {
            "description": data["description"],
            "url": data["url"],
            "safe": data["safe"],
            "long_running": data["long_running"],
            "enabled": data["enabled"],
        }
        if data.get("timeout_seconds") is not None:
            body["timeout_seconds"] = data["timeout_seconds"]
        schema = parse_json(self, "schema", required=False)
        if self.errors:
            return None
        if schema is not None:
            body["schema"] = schema
        return body


class NewToolForm(WebhookToolForm):
    id = forms.CharField(label="Tool id", max_length=64, help_text="Letters, digits, _ and -; e.g. weather")
    field_order = ["id", "description", "url", "schema", "safe", "long_running", "enabled", "timeout_seconds"]


class EditToolForm(WebhookToolForm):
    rotate_secret = forms.BooleanField(
        label="Make a new signing secret (the old one stops working)", required=False
    )


class JobFilterForm(ConsoleForm):
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any"), *ToolJob.Status.choices])


def tool_row(principal: Any, spec: ToolSpec, team: str) -> dict[str, Any]:
    return {
        "spec": spec,
        "schema": pretty(spec.schema),
        "runnable": may_execute(principal, spec),
        "edit_url": reverse("dashboard:tool-edit", kwargs={"team": team, "tool_id": spec.id}),
        "delete_url": reverse("dashboard:tool-delete", kwargs={"team": team, "tool_id": spec.id}),
    }


class ToolsView(TeamPage):
    def jobs_context(self, request: HttpRequest) -> dict[str, Any]:
        """A page of the jobs GET /tools/jobs shows this principal, newest first (?status=)."""
        form = JobFilterForm(request.GET or None)
        status = form.cleaned_data["status"] if form.is_bound and form.is_valid() else ""
        jobs: list[ToolJob] = []
        next_cursor = None
        if not form.errors:
            try:
                page = paginate(
                    tool_jobs_visible(principal=self.principal, status=status or None),
                    cursor=request.GET.get("cursor") or None,
                    limit=PAGE_SIZE,
                )
                jobs, next_cursor = page.items, page.next_cursor
            except SERVICE_ERRORS as exc:
                show_errors(form, as_application_error(exc), {"cursor": "status"})
        return {
            "job_form": form,
            "jobs": jobs,
            "can_cancel": self.can(Role.ADMIN),
            "next_query": urlencode({"status": status, "cursor": next_cursor}) if next_cursor else None,
            "first_query": urlencode({"status": status}),
            "paged": bool(request.GET.get("cursor")),
        }


class ToolsPage(ToolsView):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        specs = [
            spec
            for spec in tenant_tools(tenant=self.team)
            if may_read(self.principal, spec) or may_execute(self.principal, spec)
        ]
        context = self.jobs_context(request)
        context.update(
            tools=[tool_row(self.principal, spec, self.team.slug) for spec in specs],
            can_write=self.can(Role.ADMIN) and may_write(self.principal, "tools"),
        )
        return render(request, "dashboard/tools/index.html", self.team_context(**context))


class JobListFragment(ToolsView):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return render(request, "dashboard/tools/_jobs.html", self.team_context(**self.jobs_context(request)))


class JobView(TeamPage):
    def job(self, job_id: str, *permissions: str) -> ToolJob:
        """The team's job, if the role may reach it as GET/DELETE /tools/jobs/{id} would (404, 403)."""
        try:
            job: ToolJob = enforce_target(self.principal, job_target(self.principal, job_id, *permissions))
        except ApplicationError as error:
            raise_for_page(error)
            raise
        return job


class JobStatusFragment(JobView):
    """A job's status; while it is unfinished the fragment asks htmx to fetch it again."""

    def get(self, request: HttpRequest, job_id: str, **kwargs: Any) -> HttpResponse:
        job = tool_job_for(job=self.job(job_id, "read", "execute"))
        context = self.team_context(job=job, message=request.GET.get("done", "") == "meaning")
        return render(request, "dashboard/tools/_job_status.html", context)


class JobCancelPage(JobView):
    role = Role.ADMIN

    def post(self, request: HttpRequest, job_id: str, **kwargs: Any) -> HttpResponse:
        job = self.job(job_id, "execute")
        try:
            tool_job_cancel(job=job)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Cancelled {job.public_id}.")
        return redirect("dashboard:tools", team=self.team.slug)


class ToolNewPage(TeamPage):
    """Register a webhook tool (PUT /tools/{id} creating it); its signing secret is shown once."""

    role = Role.ADMIN

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.show(request, NewToolForm())

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = NewToolForm(request.POST)
        if form.is_valid():
            tool_id = form.cleaned_data["id"]
            problem = tool_id_problem(tool_id)
            if problem is None and tool_id in BUILTINS:
                problem = f"{tool_id} is a built-in tool; choose another id"
            if problem is None and tool_row_get(tenant=self.team, tool_id=tool_id) is not None:
                problem = f"The team has a tool {tool_id} already; edit it instead"
            if problem is not None:
                form.add_error("id", problem)
            body = form.body()
            if body is not None and not form.errors:
                require(self.principal, Action("tools", "write", tool_id))
                try:
                    spec, _, secret = tool_put(principal=self.principal, tool_id=tool_id, data=body)
                except SERVICE_ERRORS as exc:
                    show_errors(form, as_application_error(exc))
                else:
                    return render(
                        request,
                        "dashboard/tools/saved.html",
                        self.team_context(spec=spec, secret=secret, created=True),
                        status=201,
                    )
        return self.show(request, form, status=400)

    def show(self, request: HttpRequest, form: forms.Form, status: int = 200) -> HttpResponse:
        return render(request, "dashboard/tools/new.html", self.team_context(form=form), status=status)


class WebhookToolView(TeamPage):
    role = Role.ADMIN

    def webhook(self, tool_id: str) -> ToolSpec:
        """The team's webhook tool the role may write (404 for a built-in or none, 403)."""
        try:
            spec: ToolSpec = enforce_target(self.principal, tool_target(self.principal, tool_id, "write"))
        except ApplicationError as error:
            raise_for_page(error)
            raise
        if spec.kind != Tool.Kind.WEBHOOK:
            raise Http404(f"{tool_id} is a built-in tool")
        return spec


class ToolEditPage(WebhookToolView):
    def get(self, request: HttpRequest, tool_id: str, **kwargs: Any) -> HttpResponse:
        spec = self.webhook(tool_id)
        row = tool_row_get(tenant=self.team, tool_id=tool_id)
        initial = {
            "description": spec.description,
            "url": spec.webhook_url,
            "schema": pretty(spec.schema),
            "safe": spec.safe,
            "long_running": spec.long_running,
            "enabled": spec.enabled,
            "timeout_seconds": row.timeout_seconds if row is not None else None,
        }
        return self.show(request, spec, EditToolForm(initial=initial))

    def post(self, request: HttpRequest, tool_id: str, **kwargs: Any) -> HttpResponse:
        spec = self.webhook(tool_id)
        form = EditToolForm(request.POST)
        if form.is_valid():
            body = form.body()
            if body is not None:
                body["rotate_secret"] = form.cleaned_data["rotate_secret"]
                try:
                    saved, _, secret = tool_put(principal=self.principal, tool_id=tool_id, data=body)
                except SERVICE_ERRORS as exc:
                    show_errors(form, as_application_error(exc))
                else:
                    if secret is not None:
                        context = self.team_context(spec=saved, secret=secret, created=False)
                        return render(request, "dashboard/tools/saved.html", context)
                    messages.success(request, f"Saved {tool_id}.")
                    return redirect("dashboard:tools", team=self.team.slug)
        return self.show(request, spec, form, status=400)

    def show(self, request: HttpRequest, spec: ToolSpec, form: forms.Form, status: int = 200) -> HttpResponse:
        return render(
            request, "dashboard/tools/edit.html", self.team_context(spec=spec, form=form), status=status
        )


class ToolDeletePage(WebhookToolView):
    def get(self, request: HttpRequest, tool_id: str, **kwargs: Any) -> HttpResponse:
        spec = self.webhook(tool_id)
        return render(request, "dashboard/tools/delete.html", self.team_context(spec=spec))

    def post(self, request: HttpRequest, tool_id: str, **kwargs: Any) -> HttpResponse:
        self.webhook(tool_id)
        tool_delete(principal=self.principal, tool_id=tool_id)
        messages.success(request, f"Deleted {tool_id}.")
        return redirect("dashboard:tools", team=self.team.slug)
