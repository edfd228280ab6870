"""The /agents endpoints (PROTOCOL.md §11): thin views over selectors and services.

Scopes: `agents.<id>.read` to see an agent (lists show only those), `agents.<id>.write` to
create, change or delete it; running one (`agents.<id>.execute`) is POST /chat's.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.agents import selectors, services
from apps.agents.serializers import (
    AgentCreateSerializer,
    AgentDeletedSerializer,
    AgentFieldsSerializer,
    AgentListQuerySerializer,
    AgentListSerializer,
    AgentSerializer,
    AgentWrittenSerializer,
    agent_id_problem,
)
from apps.core.errors import ValidationFailed
from apps.core.openapi import error_responses
from apps.core.serializers import page_query, validated
from apps.tenants.access import Need, NeedSome, body, readable, url
from apps.tenants.api import SlopView

ID_PATH = OpenApiParameter(
    "agent_id",
    str,
    OpenApiParameter.PATH,
    description="The agent's id: 1-64 of a-z, 0-9, _ and -",
    examples=[OpenApiExample("An agent", value="support")],
)


def _posted_id(value: Any) -> str:
    """The id a POST creates, checked before the scope that names it."""
    if value is None:
        raise ValidationFailed({"id": ["This field is required."]})
    if (problem := agent_id_problem(value)) is not None:
        raise ValidationFailed({"id": [problem]})
    return str(value)


_ID_IN_URL = url("agent_id")


class AgentListView(SlopView):
    info_description = "List the team's agents (the ones the caller may read) or create one"
    access = {
        "GET": NeedSome("agents", "read"),  # the list holds only readable agents
        "POST": Need("agents", "write", body("id", validate=_posted_id)),
    }

    @extend_schema(parameters=[AgentListQuerySerializer], responses={200: AgentListSerializer})
    def get(self, request: Request) -> Response:
        """The agents this caller may read, newest first."""
        query = page_query(request.query_params, AgentListQuerySerializer)
        page = selectors.agent_list(
            tenant=self.tenant,
            readable_ids=readable(self.principal, "agents"),
            cursor=query["cursor"],
            limit=query["limit"],
        )
        agents = [selectors.agent_as_dict(agent) for agent in page.items]
        return Response({"agents": agents, "next_cursor": page.next_cursor})

    @extend_schema(
        request=AgentCreateSerializer, responses={201: AgentWrittenSerializer, **error_responses(409)}
    )
    def post(self, request: Request) -> Response:
        """Create an agent; 409 when the id exists. Its tools, model and handoffs must be the
        team's (400 naming the unknown ones); an agent never hands off to itself."""
        fields = validated(AgentCreateSerializer, request.data)
        agent = services.agent_create(tenant=self.tenant, agent_id=fields["id"], fields=fields)
        return Response({"status": "created", "agent": selectors.agent_as_dict(agent)}, status=201)


class AgentDetailView(SlopView):
    info_description = "Get, update (partial) or delete one agent"
    access = {
        "GET": Need("agents", "read", _ID_IN_URL),
        "PUT": Need("agents", "write", _ID_IN_URL),
        "DELETE": Need("agents", "write", _ID_IN_URL),
    }

    @extend_schema(parameters=[ID_PATH], responses={200: AgentSerializer})
    def get(self, request: Request, agent_id: str) -> Response:
        return Response(selectors.agent_as_dict(selectors.agent_get(tenant=self.tenant, agent_id=agent_id)))

    @extend_schema(
        parameters=[ID_PATH], request=AgentFieldsSerializer, responses={200: AgentWrittenSerializer}
    )
    def put(self, request: Request, agent_id: str) -> Response:
        """Partial update: the fields sent replace the stored ones; the others stay."""
        fields = validated(AgentFieldsSerializer, request.data)
        agent = services.agent_update(tenant=self.tenant, agent_id=agent_id, fields=fields)
        return Response({"status": "updated", "agent": selectors.agent_as_dict(agent)})

    @extend_schema(parameters=[ID_PATH], responses={200: AgentDeletedSerializer, **error_responses(409)})
    def delete(self, request: Request, agent_id: str) -> Response:
        """Delete an agent; 409 naming the agents whose handoffs still name it."""
        services.agent_delete(tenant=self.tenant, agent_id=agent_id)
        return Response({"status": "deleted", "id": agent_id})
