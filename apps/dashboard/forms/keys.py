"""The API-key form: a name, the scopes (presets, a picker per area, free text), expiry and a cap.

A key's scopes are the union of the chosen preset, the picker's boxes and the advanced text, each
checked with `parse_scopes` (PROTOCOL.md §3) and against what the member may do in the console
(a key is never wider than its maker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from apps.tenants.scopes import ScopeError, ScopeSet, parse_scope, parse_scopes


@dataclass(frozen=True)
class Area:
    name: str
    label: str
    permissions: tuple[tuple[str, str], ...]  # (value, label); "safe": tools.safe.*
    identifier: str = ""  # what an identifier is in this area ("" when it has none)
    prefix: bool = False  # identifiers match by prefix (memory, resources)


AREAS = (
    Area("chat", "Chat", (("read", "read threads"), ("write", "send messages"), ("*", "all")), "thread ids"),
    Area(
        "tools",
        "Tools",
        (
            ("list", "list"),
            ("read", "read"),
            ("execute", "run"),
            ("safe", "run safe tools only"),
            ("*", "all"),
        ),
        "tool ids",
    ),
    Area(
        "memory", "Memory", (("read", "read"), ("write", "write"), ("*", "all")), "key prefixes", prefix=True
    ),
    Area(
        "resources",
        "Resources",
        (("read", "read"), ("write", "write"), ("*", "all")),
        "id prefixes",
        prefix=True,
    ),
    Area(
        "agents",
        "Agents",
        (("read", "read"), ("write", "write"), ("execute", "run"), ("*", "all")),
        "agent ids",
    ),
    Area("pay", "Payments", (("read", "read"), ("execute", "make payments"), ("*", "all"))),
    Area("usage", "Usage", (("read", "read"),)),
    Area("billing", "Billing", (("read", "read"), ("write", "change plan"), ("*", "all"))),
)

# The seed's examples (seeds/slop-readme-latest.md, "Scope headers") and the usual shapes of a key.
PRESETS = (
    ("", "None: pick below", ""),
    ("full", "Full access", "*"),
    ("chat", "Chat only", "chat.*"),
    ("memory-read", "Read-only memory", "memory.read"),
    ("user-memory", "User memory (keys starting with user)", "memory.user.*"),
    ("safe-tools", "Safe tools only", "tools.safe.*"),
    (
        "seed",
        "Chat history, the calculator and user memory, read",
        "chat.read,tools.calculator,memory.user.read",
    ),
    (
        "read-only",
        "Read-only everything",
        "chat.read,tools.list,tools.read,memory.read,resources.read,agents.read,usage.read",
    ),
)
PRESET_SCOPES = {value: scopes for value, _label, scopes in PRESETS}

EXPIRY_CHOICES = (("30", "30 days"), ("90", "90 days"), ("never", "Never"), ("date", "On a date"))
_IDENTIFIERS = re.compile(r"[\s,]+")


def scopes_of_area(area: Area, permissions: list[str], identifiers: str) -> list[str]:
    """The picker's row as scope strings: each permission, for every identifier (or all)."""
    names = [name for name in _IDENTIFIERS.split(identifiers.strip()) if name] if area.identifier else []
    scopes = []
    for permission in permissions:
        if permission == "safe":
            scopes += [f"tools.safe.{name}" for name in names] or ["tools.safe.*"]
        else:
            scopes += [f"{area.name}.{name}.{permission}" for name in names] or [f"{area.name}.{permission}"]
    return scopes


class KeyCreateForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="What uses it, e.g. “support bot (production)”."
    )
    preset = forms.ChoiceField(
        label="Preset", choices=[(value, label) for value, label, _ in PRESETS], required=False, initial=""
    )
    advanced = forms.CharField(
        label="Advanced scopes",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="Comma-separated, as in X-SLOP-Scope: e.g. memory.user.read, tools.calculator.execute",
    )
    expiry = forms.ChoiceField(
        label="Expires", choices=EXPIRY_CHOICES, initial="90", widget=forms.RadioSelect
    )
    expires_on = forms.DateField(
        label="Expiry date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The key works through this day (UTC).",
    )
    monthly_token_cap = forms.IntegerField(
        label="Monthly token cap",
        required=False,
        min_value=0,
        max_value=10**15,
        help_text="LLM tokens this key may use per billing period; empty: no cap of its own.",
    )

    def __init__(self, *args: Any, granted: ScopeSet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.granted = granted
        for area in AREAS:
            self.fields[f"perm_{area.name}"] = forms.MultipleChoiceField(
                label=area.label,
                choices=area.permissions,
                required=False,
                widget=forms.CheckboxSelectMultiple,
            )
            if area.identifier:
                self.fields[f"ident_{area.name}"] = forms.CharField(
                    label=f"{area.label}: only these {area.identifier}",
                    required=False,
                    max_length=1000,
                    help_text="Empty: every one. Several: separated by commas."
                    + (" Matched by prefix." if area.prefix else ""),
                )

    def area_rows(self) -> list[dict[str, Any]]:
        """For the template: each area's permission boxes and identifier field."""
        return [
            {
                "area": area,
                "permissions": self[f"perm_{area.name}"],
                "identifier": self[f"ident_{area.name}"] if area.identifier else None,
            }
            for area in AREAS
        ]

    def _checked(self, field: str, scopes: list[str]) -> list[str]:
        """`scopes` parsed one by one; the first that does not parse is `field`'s error."""
        normalised = []
        for text in scopes:
            try:
                scope = parse_scope(text)
            except ScopeError as exc:
                self.add_error(field, str(exc))
                return []
            if not self.granted.grants(scope):
                self.add_error(field, f"You may not grant {scope}: it is more than your role allows.")
                return []
            normalised.append(str(scope))
        return normalised

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        scopes: list[str] = []
        preset = cleaned.get("preset") or ""
        if preset:
            scopes += self._checked("preset", PRESET_SCOPES[preset].split(","))
        for area in AREAS:
            permissions = cleaned.get(f"perm_{area.name}") or []
            identifiers = cleaned.get(f"ident_{area.name}") or ""
            if identifiers and not permissions:
                self.add_error(
                    f"ident_{area.name}", f"Tick what the key may do with these {area.identifier}."
                )
                continue
            field = f"ident_{area.name}" if area.identifier else f"perm_{area.name}"
            scopes += self._checked(field, scopes_of_area(area, permissions, identifiers))
        advanced = [item for item in (cleaned.get("advanced") or "").split(",") if item.strip()]
        scopes += self._checked("advanced", advanced)
        if not self.errors and not scopes:
            raise forms.ValidationError(
                "Choose what the key may do: a preset, a box below or advanced scopes."
            )
        unique = list(dict.fromkeys(scopes))
        if len(unique) > 100:
            self.add_error("advanced", "A key holds at most 100 scopes.")
        elif unique and not self.errors:
            cleaned["scopes"] = parse_scopes(unique).strings()
        cleaned["expires_at"] = self._expires_at(cleaned)
        return cleaned

    def _expires_at(self, cleaned: dict[str, Any]) -> datetime | None:
        expiry = cleaned.get("expiry")
        if expiry in ("30", "90"):
            return timezone.now() + timedelta(days=int(expiry))
        if expiry != "date":
            return None
        day: date | None = cleaned.get("expires_on")
        today = timezone.now().astimezone(UTC).date()
        if day is None:
            if "expires_on" not in self.errors:
                self.add_error("expires_on", "Give the date the key stops working.")
            return None
        if day < today:
            self.add_error("expires_on", "The date has passed: choose today or a later day.")
            return None
        if day > today + timedelta(days=3660):
            self.add_error(
                "expires_on", "At most 10 years ahead; choose “Never” for a key that does not expire."
            )
            return None
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
