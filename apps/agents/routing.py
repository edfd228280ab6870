"""Choosing an agent by content (PROTOCOL.md §11 `"pattern": "route"`).

With a real model the router decides through a tool call: it is offered one `transfer_to_<id>`
function per candidate (described by the candidate's description) and the call it makes is the
choice. With `echo`, or when the model calls none of them, the platform picks the candidate whose
description is nearest in meaning to the message (the platform's embeddings), so routing works
offline and deterministically. Either way the decision says why (`reason`) and, by similarity,
how close it was (`score`, cosine in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from apps.core.embeddings import embed_texts
from apps.llm.providers.base import (
    ChatMessage,
    CompletionRequest,
    Provider,
    ToolCallRequest,
    ToolDefinition,
    UsageReport,
)

TRANSFER_PREFIX = "transfer_to_"


def transfer_name(slug: str) -> str:
    # OpenAI allows [A-Za-z0-9_-]{1,64} for function names; agent ids are [a-z0-9_-]{1,64}.
    return (TRANSFER_PREFIX + slug)[:64]


def transfer_definition(slug: str, description: str) -> ToolDefinition:
    return ToolDefinition(
        name=transfer_name(slug),
        description=f"Transfer the conversation to the agent {slug!r}: {description or slug}",
        parameters={
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why this agent"}},
        },
    )


@dataclass(frozen=True)
class Candidate:
    slug: str
    name: str
    description: str

    @property
    def routing_text(self) -> str:
        return f"{self.name or self.slug}: {self.description}" if self.description else self.name or self.slug


@dataclass(frozen=True)
class RouteDecision:
    agent: str
    reason: str
    score: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0


def _cosine(first: Sequence[float], second: Sequence[float]) -> float:
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    norms = math.sqrt(sum(a * a for a in first)) * math.sqrt(sum(b * b for b in second))
    return dot / norms if norms else 0.0


def similarity_scores(message: str, candidates: Sequence[Candidate], *, tenant_id: int) -> dict[str, float]:
    """Cosine similarity of the message to each candidate's description, clamped to [0, 1]."""
    vectors = embed_texts([message, *(c.routing_text for c in candidates)], tenant_id=tenant_id)
    query = vectors[0]
    return {
        c.slug: max(0.0, min(1.0, _cosine(query, v))) for c, v in zip(candidates, vectors[1:], strict=True)
    }


def route_by_similarity(
    message: str, candidates: Sequence[Candidate], *, tenant_id: int, why: str = ""
) -> RouteDecision:
    """The candidate whose description is nearest the message (ties: the first listed)."""
    scores = similarity_scores(message, candidates, tenant_id=tenant_id)
    best = max(candidates, key=lambda c: scores[c.slug])
    score = round(scores[best.slug], 4)
    reason = f"{why}description nearest the message (similarity {score:.2f})"
    return RouteDecision(agent=best.slug, reason=reason, score=score)


async def route_by_model(
    *,
    provider: Provider,
    model: str,
    conversation: list[ChatMessage],
    candidates: Sequence[Candidate],
    instructions: str = "",
) -> RouteDecision:
    """Asks the router model to call one `transfer_to_<id>`; `agent` is "" when it calls none."""
    by_name = {transfer_name(c.slug): c.slug for c in reversed(candidates)}
    system = instructions or (
        "You are a router. Choose the one agent best suited to answer the user and call its "
        "transfer function. Do not answer the user yourself."
    )
    request = CompletionRequest(
        model=model,
        messages=[ChatMessage(role="system", content=system), *conversation],
        tools=[transfer_definition(c.slug, c.description) for c in candidates],
    )
    chosen: str | None = None
    reason = ""
    input_tokens = output_tokens = 0
    async for event in provider.stream(request):
        if isinstance(event, ToolCallRequest) and chosen is None and event.call.name in by_name:
            chosen = by_name[event.call.name]
            given = event.call.arguments.get("reason")
            reason = f": {given}" if isinstance(given, str) and given else ""
        elif isinstance(event, UsageReport):
            input_tokens += event.input_tokens
            output_tokens += event.output_tokens
    if chosen is None:
        return RouteDecision(agent="", reason="", input_tokens=input_tokens, output_tokens=output_tokens)
    return RouteDecision(
        agent=chosen,
        reason=f"the router model called {transfer_name(chosen)}{reason}",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
