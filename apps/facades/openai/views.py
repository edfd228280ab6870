"""The OpenAI API at /v1 (PROTOCOL.md §13): thin views over the chat service, with OpenAI's request,
response, streaming and error shapes. Same keys (`Authorization: Bearer`), same scopes."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.http import StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.chat.streaming import _release_database, worker_thread
from apps.core.serializers import ServerSentEventSerializer
from apps.facades.openai import completions
from apps.facades.openai.access import COMPLETE, LIST_MODELS
from apps.facades.openai.errors import OpenAIError, openai_exception_handler
from apps.facades.openai.selectors import openai_models
from apps.facades.openai.serializers import (
    ChatCompletionRequestSerializer,
    ChatCompletionSerializer,
    ModelListSerializer,
    OpenAIErrorSerializer,
    check_choices,
    refuse_unknown_parameters,
    validate_request,
)
from apps.tenants.api import JsonOrStreamNegotiation, SlopView, json_body
from apps.tenants.authentication import ApiKeyAuthentication


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(OpenAIErrorSerializer, description="OpenAI's error shape")
        for status in statuses
    }


class OpenAIView(SlopView):
    """A key is required (OpenAI clients always send one); errors are rendered in OpenAI's shape."""

    authentication_classes = [ApiKeyAuthentication]
    content_negotiation_class = JsonOrStreamNegotiation

    def get_exception_handler(self) -> Any:
        return openai_exception_handler


class ModelsView(OpenAIView):
    info_description = 'OpenAI API: the team\'s models and agents ("agent:<id>") this key may use'
    access = {"GET": LIST_MODELS}

    @extend_schema(responses={200: ModelListSerializer, **_errors(400, 401, 403, 429)})
    def get(self, request: Request) -> Response:
        """The team's models, and its agents the key may execute as `agent:<id>` (OpenAI's list)."""
        return Response({"object": "list", "data": openai_models(principal=self.principal)})


class ChatCompletionsView(OpenAIView):
    info_description = 'OpenAI API: chat completions over a model or an agent ("agent:<id>"), streaming too'
    access = {"POST": COMPLETE}

    @extend_schema(
        request=ChatCompletionRequestSerializer,
        responses={
            200: ChatCompletionSerializer,
            (200, "text/event-stream"): OpenApiResponse(
                ServerSentEventSerializer, description="chat.completion.chunk events, then data: [DONE]"
            ),
            **_errors(400, 401, 403, 404, 413, 415, 429, 502, 504),
        },
    )
    def post(self, request: Request) -> HttpResponseBase:
        """OpenAI's Chat Completions: a model of the team with the client's own tools (tool calls come
        back to the client), or `"model": "agent:<id>"`, run server-side with the agent's tools.
        Parameters this server does not act on are refused (400, `param` names them)."""
        body = json_body(request)
        refuse_unknown_parameters(body)
        data = validate_request(body)
        check_choices(data)
        plan, prepared = completions.prepare(principal=self.principal, data=data)
        if plan.stream:
            exchange = completions.exchange_for(plan, prepared, to_thread=worker_thread)
            _release_database()  # as /chat's streams do: the stream stores its reply on its own connection
            response = StreamingHttpResponse(
                completions.stream(exchange, plan), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response

        async def run() -> dict[str, Any]:
            exchange = completions.exchange_for(plan, prepared, to_thread=sync_to_async)
            return await completions.complete(exchange, plan)

        return Response(async_to_sync(run)())


@extend_schema(exclude=True)
class NotFoundView(OpenAIView):
    """Any other path under /v1: OpenAI's 404 (`Invalid URL`), not the SLOP one, so OpenAI clients
    read it. No tenant data behind it, so no scope applies; the key is still checked first."""

    dangerously_unchecked = "answers only a 404 naming the path; no tenant data"

    def _missing(self, request: Request, rest: str) -> Response:
        raise OpenAIError(
            f"Invalid URL ({request.method} {request.path})", param=None, code="unknown_url", status=404
        )

    get = post = put = patch = delete = _missing
