"""The agents page: the team's agents for every member; admins and owners create, edit and delete
them. Writes go through the /agents API's serializers and apps.agents.services, so the page
accepts what the API accepts and shows its errors (a 409 on deleting a handoff target names the
agents that still hand off to it)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.agents import selectors, services
from apps.agents.models import Agent
from apps.agents.serializers import AgentCreateSerializer, AgentFieldsSerializer
from apps.core.errors import ApplicationError, to_application_error
from apps.core.serializers import validated
from apps.dashboard.forms.agents import AgentForm
from apps.dashboard.teams import TeamPage
from apps.dashboard.views.playground import team_agents
from apps.llm.selectors import available_models
from apps.tenants.access import allows
from apps.tenants.roles import Role
from apps.tenants.scopes import Action
from apps.tools.selectors import tenant_tools


def _tools_shown(tools: Any) -> str:
    if tools == "auto":
        return "every tool the caller may run"
    if tools == "none" or not tools:
        return "none"
    return ", ".join(str(tool) for tool in tools)


class AgentList(TeamPage):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        rows = [
            {"agent": agent, "tools": _tools_shown(agent.tools), "handoffs": list(agent.handoffs or [])}
            for agent in team_agents(self)
        ]
        return render(
            request,
            "dashboard/agents/list.html",
            self.team_context(rows=rows, can_write=self.can(Role.ADMIN)),
        )


class _AgentWrite(TeamPage):
    role = Role.ADMIN

    def _check_scope(self, agent_id: str) -> None:
        if not allows(self.principal, Action("agents", "write", agent_id)):
            raise PermissionDenied(f"Writing agent {agent_id} needs agents.{agent_id}.write")

    def _agent(self, agent_id: str) -> Agent:
        try:
            return selectors.agent_get(tenant=self.team, agent_id=agent_id)
        except ApplicationError:
            raise Http404("No such agent") from None

    def _form(self, data: Any = None, editing: Agent | None = None) -> AgentForm:
        return AgentForm(
            data,
            models=sorted(available_models(tenant=self.team)),
            tools=[spec.id for spec in tenant_tools(tenant=self.team)],
            agents=[agent.slug for agent in Agent.objects.for_tenant(self.team).order_by("slug")],
            editing=editing,
        )

    def _render(self, form: AgentForm, status: int = 200) -> HttpResponse:
        context = self.team_context(form=form, editing=form.editing)
        return render(self.request, "dashboard/agents/form.html", context, status=status)


class AgentCreate(_AgentWrite):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self._render(self._form())

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = self._form(request.POST)
        if not form.is_valid():
            return self._render(form, status=400)
        body = form.body()
        try:
            fields = validated(AgentCreateSerializer, body)
            self._check_scope(fields["id"])
            agent = services.agent_create(tenant=self.team, agent_id=fields["id"], fields=fields)
        except Exception as exc:
            return self._refused(form, exc)
        messages.success(request, f"Agent {agent.slug} created.")
        return redirect("dashboard:agents", team=self.team.slug)

    def _refused(self, form: AgentForm, exc: Exception) -> HttpResponse:
        error = to_application_error(exc)
        if error is None or isinstance(exc, PermissionDenied):
            raise exc
        details = error.extra.get("details")
        if isinstance(details, dict) and details:
            form.show_problems(details)
        else:
            form.add_error("id" if error.status == 409 else None, error.message)
        return self._render(form, status=error.status)


class AgentEdit(AgentCreate):
    def get(self, request: HttpRequest, agent_id: str = "", **kwargs: Any) -> HttpResponse:
        return self._render(self._form(editing=self._agent(agent_id)))

    def post(self, request: HttpRequest, agent_id: str = "", **kwargs: Any) -> HttpResponse:
        agent = self._agent(agent_id)
        self._check_scope(agent.slug)
        form = self._form(request.POST, editing=agent)
        if not form.is_valid():
            return self._render(form, status=400)
        try:
            fields = validated(AgentFieldsSerializer, form.body())
            services.agent_update(tenant=self.team, agent_id=agent.slug, fields=fields)
        except Exception as exc:
            return self._refused(form, exc)
        messages.success(request, f"Agent {agent.slug} saved.")
        return redirect("dashboard:agents", team=self.team.slug)


class AgentDelete(_AgentWrite):
    def get(self, request: HttpRequest, agent_id: str = "", **kwargs: Any) -> HttpResponse:
        agent = self._agent(agent_id)
        referrers = selectors.agents_handing_off_to(tenant=self.team, agent_id=agent.slug)
        return self._confirm(agent, referrers=referrers)

    def post(self, request: HttpRequest, agent_id: str = "", **kwargs: Any) -> HttpResponse:
        agent = self._agent(agent_id)
        self._check_scope(agent.slug)
        try:
            services.agent_delete(tenant=self.team, agent_id=agent.slug)
        except ApplicationError as refused:
            if refused.status != 409:
                raise
            referrers = list(refused.extra.get("handoffs_from") or [])
            return self._confirm(agent, referrers=referrers, error=refused.message, status=409)
        messages.success(request, f"Agent {agent.slug} deleted.")
        return redirect("dashboard:agents", team=self.team.slug)

    def _confirm(
        self, agent: Agent, *, referrers: list[str], error: str = "", status: int = 200
    ) -> HttpResponse:
        context = self.team_context(agent=agent, referrers=referrers, error=error)
        return render(self.request, "dashboard/agents/delete.html", context, status=status)
