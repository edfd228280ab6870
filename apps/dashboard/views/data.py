"""What the console's data pages (memory, resources, tools & jobs) share: acting through the
services with the member's principal, and turning the services' errors into what a person sees.

The services and selectors are those of the SLOP endpoints; the scope decision is the one of
apps/tenants/access.py (`allows`), so a role can do here exactly what a key with its scopes could.
A refusal is a 403 (PermissionDenied), an object of no one the member may reach a 404, and a bad
input an error on the form with nothing stored.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from rest_framework.exceptions import ValidationError as DrfValidationError

from apps.core.errors import ApplicationError, to_application_error
from apps.tenants.access import allows, may_some
from apps.tenants.authentication import Principal
from apps.tenants.scopes import Action

# The errors the services raise for bad input (DRF's ValidationError comes from `validated`).
SERVICE_ERRORS = (ApplicationError, DrfValidationError)
PAGE_SIZE = 25


class TextArea(forms.CharField):
    """A textarea's text as typed: browsers send CRLF line ends, which are stored as LF."""

    def __init__(self, *, rows: int = 10, **kwargs: Any) -> None:
        kwargs.setdefault("strip", False)
        kwargs.setdefault("required", False)
        super().__init__(widget=forms.Textarea(attrs={"rows": rows}), **kwargs)

    def to_python(self, value: Any) -> str:
        return str(super().to_python(value)).replace("\r\n", "\n")


class ConsoleForm(forms.Form):
    """A console form: labels without Django's trailing colon (as the console's other forms)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def as_application_error(exc: Exception) -> ApplicationError:
    error = to_application_error(exc)
    assert error is not None  # only SERVICE_ERRORS are passed here
    return error


def require(principal: Principal, action: Action) -> None:
    """The 403 a key with the member's scopes would get, before anything is read or written."""
    if not allows(principal, action):
        raise PermissionDenied(f"Your role does not allow {action}")


def may_write(principal: Principal, area: str) -> bool:
    """Whether to show write controls: the role may write something in the area."""
    return may_some(principal, area, "write")


def raise_for_page(error: ApplicationError) -> None:
    """A 403 or 404 from a service is the page's 403 or 404, not a message on a form."""
    if error.status == 403:
        raise PermissionDenied(error.message)
    if error.status == 404:
        raise Http404(error.message)


def show_errors(form: forms.Form, error: ApplicationError, fields: dict[str, str] | None = None) -> None:
    """The service's error on the form: each `details` entry on its field (`fields` maps the
    service's field names to the form's), anything else above the form."""
    raise_for_page(error)
    names = fields or {}
    details: dict[str, list[str]] = error.extra.get("details") or {}
    if not details:
        form.add_error(None, error.message)
        return
    for field, messages in details.items():
        name = names.get(field.split(".")[0].split("[")[0], field.split(".")[0].split("[")[0])
        text = " ".join(messages)
        if name in form.fields:
            form.add_error(name, text if name == field else f"{field}: {text}")
        else:
            form.add_error(None, f"{field}: {text}")


def parse_json(form: forms.Form, field: str, *, required: bool = True) -> Any:
    """The JSON in a textarea of `form` (already cleaned), or a form error. Missing is None."""
    text = form.cleaned_data.get(field) or ""
    if not text.strip():
        if required:
            form.add_error(field, "Required: a JSON value.")
        return None
    try:
        return json.loads(text)
    except RecursionError:
        form.add_error(field, "Not valid JSON: nested too deeply.")
    except ValueError as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        form.add_error(field, f"Not valid JSON: {detail}{where}.")
    return None


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def is_fragment(request: HttpRequest) -> bool:
    """A request of htmx or of the page's own script, which wants a fragment, not a page."""
    return request.headers.get("HX-Request") == "true" or (
        request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )
