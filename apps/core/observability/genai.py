"""One model call and one tool call, as metrics and GenAI spans: what the model loop records.

    call = ModelCall(provider="openai", model="gpt-4o-mini", temperature=None, max_tokens=None,
                     parent=parent_context)
    ... call.first_output() on the first piece streamed, call.usage(input, output) when reported
    call.finish(error)

Time to first token and token counts go to Prometheus by provider and platform model name
(metrics.model_label); the span `chat {model}` carries the model as asked, the usage and errors.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from apps.core.observability import metrics, tracing


class ModelCall:
    __slots__ = ("first", "input_tokens", "label", "output_tokens", "provider", "span", "started")

    def __init__(self, *, provider: str, model: str, temperature: float | None, max_tokens: int | None,
                 parent: Any) -> None:  # fmt: skip
        self.provider = provider
        self.label = metrics.model_label(model)
        self.started = time.perf_counter()
        self.first: float | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.span = tracing.chat_span(
            provider=provider, model=model, temperature=temperature, max_tokens=max_tokens, parent=parent
        )

    def first_output(self) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started
            metrics.LLM_TIME_TO_FIRST_TOKEN.labels(self.provider, self.label).observe(self.first)

    def usage(self, input_tokens: int, output_tokens: int) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens

    def finish(self, error: BaseException | None = None) -> None:
        if error is None:
            outcome = "ok"
        elif isinstance(error, GeneratorExit | asyncio.CancelledError):
            outcome = "cancelled"  # the client went away, or cancelled the reply
        else:
            outcome = "error"
        elapsed = time.perf_counter() - self.started
        metrics.LLM_DURATION.labels(self.provider, self.label, outcome).observe(elapsed)
        if self.input_tokens:
            metrics.LLM_TOKENS.labels(self.provider, self.label, "input").observe(self.input_tokens)
        if self.output_tokens:
            metrics.LLM_TOKENS.labels(self.provider, self.label, "output").observe(self.output_tokens)
        tracing.end_span(
            self.span,
            error if outcome == "error" else None,
            **{
                "gen_ai.usage.input_tokens": self.input_tokens,
                "gen_ai.usage.output_tokens": self.output_tokens,
            },
        )


def tool_call_recorded(tool: str, *, builtin: bool, seconds: float, ok: bool) -> None:
    label = metrics.tool_label(tool, builtin=builtin)
    metrics.TOOL_CALLS.labels(label, "ok" if ok else "error").inc()
    metrics.TOOL_DURATION.labels(label).observe(seconds)
