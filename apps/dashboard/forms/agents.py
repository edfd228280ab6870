"""The agents page's form: it reads what a person typed into the body the /agents API takes, and
that body goes through the API's own serializer and services (apps.agents), so the page accepts
exactly what the API accepts and shows the same errors beside the fields they are about."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.agents.models import Agent
from apps.agents.serializers import (
    MAX_DESCRIPTION,
    MAX_INSTRUCTIONS,
    MAX_NAME,
    MAX_PREFIX,
    MAX_TOKENS,
)

TOOL_MODES = [
    ("auto", "Every tool the caller may run"),
    ("none", "No tools"),
    ("list", "Only these tools:"),
]


class AgentForm(forms.Form):
    id = forms.CharField(
        label="Id",
        max_length=64,
        help_text="1-64 of a-z, 0-9, _ and -: how the API and other agents name it. It cannot change.",
    )
    name = forms.CharField(label="Name", max_length=MAX_NAME, required=False)
    description = forms.CharField(
        label="Description",
        max_length=MAX_DESCRIPTION,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What it is good at: routing by content reads this.",
    )
    model = forms.ChoiceField(label="Model", required=False)
    instructions = forms.CharField(
        label="Instructions",
        max_length=MAX_INSTRUCTIONS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Its system prompt.",
    )
    tools_mode = forms.ChoiceField(
        label="Tools", choices=TOOL_MODES, widget=forms.RadioSelect, initial="auto"
    )
    tools = forms.MultipleChoiceField(
        label="Tools it may use", required=False, widget=forms.CheckboxSelectMultiple
    )
    handoffs = forms.MultipleChoiceField(
        label="Hands off to",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Agents of this team it may transfer the conversation to.",
    )
    memory_prefix = forms.CharField(label="Memory prefix", max_length=MAX_PREFIX, required=False)
    resources_prefix = forms.CharField(label="Resources prefix", max_length=MAX_PREFIX, required=False)
    temperature = forms.FloatField(label="Temperature", required=False, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(label="Max tokens", required=False, min_value=1, max_value=MAX_TOKENS)

    def __init__(
        self,
        *args: Any,
        models: list[str],
        tools: list[str],
        agents: list[str],
        editing: Agent | None = None,
        **kwargs: Any,
    ) -> None:
        if editing is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_of(editing)
        super().__init__(*args, **kwargs)
        self.editing = editing
        model_choices = [("", "The team's default model")] + [(name, name) for name in models]
        if editing is not None and editing.model and editing.model not in models:
            model_choices.append((editing.model, f"{editing.model} (no longer available)"))
        self.fields["model"].choices = model_choices  # type: ignore[attr-defined]
        # What the agent names already stays a choice, so an edit can keep it or drop it (the
        # services say when it is no longer the team's).
        named_tools = editing.tools if editing is not None and isinstance(editing.tools, list) else []
        tool_choices = list(dict.fromkeys([*tools, *named_tools]))
        self.fields["tools"].choices = [(tool, tool) for tool in tool_choices]  # type: ignore[attr-defined]
        own = editing.slug if editing is not None else None
        named_agents = list(editing.handoffs or []) if editing is not None else []
        self.fields["handoffs"].choices = [  # type: ignore[attr-defined]
            (slug, slug) for slug in dict.fromkeys([*agents, *named_agents]) if slug != own
        ]
        if editing is not None:
            self.fields["id"].disabled = True
            self.fields["id"].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode, ticked = data.get("tools_mode"), data.get("tools")
        # Ticked tools that the chosen mode would not use are an error, not silently dropped.
        if mode == "list" and not ticked:
            self.add_error("tools", 'Tick at least one tool, or choose "No tools".')
        elif mode in ("auto", "none") and ticked:
            self.add_error("tools", 'Choose "Only these tools" to limit the agent to the ticked tools.')
        return data

    def body(self) -> dict[str, Any]:
        """The cleaned form as the /agents API's body (POST without `id` when editing: PUT)."""
        data = self.cleaned_data
        mode = data.get("tools_mode") or "auto"
        body: dict[str, Any] = {
            "name": data.get("name") or "",
            "description": data.get("description") or "",
            "model": data.get("model") or "",
            "instructions": data.get("instructions") or "",
            "tools": list(data.get("tools") or []) if mode == "list" else mode,
            "handoffs": list(data.get("handoffs") or []),
            "memory_prefix": data.get("memory_prefix") or "",
            "resources_prefix": data.get("resources_prefix") or "",
            "temperature": data.get("temperature"),
            "max_tokens": data.get("max_tokens"),
        }
        if self.editing is None:
            body["id"] = data.get("id") or ""
        return body

    def show_problems(self, details: dict[str, list[str]]) -> None:
        """The API's validation errors, each beside its field (the rest above the form)."""
        for field, messages in details.items():
            name = field.split("[", 1)[0].split(".", 1)[0]
            if name == "tools":
                name = "tools_mode"
            target = name if name in self.fields else None
            for text in messages:
                self.add_error(target, text if target else f"{field}: {text}")


def initial_of(agent: Agent) -> dict[str, Any]:
    tools = agent.tools
    return {
        "id": agent.slug,
        "name": agent.name,
        "description": agent.description,
        "model": agent.model,
        "instructions": agent.instructions,
        "tools_mode": tools if tools in ("auto", "none") else "list",
        "tools": tools if isinstance(tools, list) else [],
        "handoffs": list(agent.handoffs or []),
        "memory_prefix": agent.memory_prefix,
        "resources_prefix": agent.resources_prefix,
        "temperature": agent.temperature,
        "max_tokens": agent.max_tokens,
    }
