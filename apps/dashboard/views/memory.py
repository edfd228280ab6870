"""The Memory page: a team's keys by prefix, semantic search, and one value to view, edit or delete.

Every read and write goes through apps/memory's selectors and services as the member's principal:
the list and the search show only the keys the role may read (the selectors filter by the scopes'
prefixes), a write needs `memory.<key>.write` (members have memory.read only: 403), and a value
is validated by the same serializer and service as POST /memory, so a bad value stores nothing.
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
    as_application_error,
    may_write,
    parse_json,
    pretty,
    require,
    show_errors,
)
from apps.memory import selectors, services
from apps.memory.models import KEY_MAX_LENGTH, MemoryItem
from apps.memory.serializers import (
    QUERY_MAX_CHARACTERS,
    QUERY_MAX_LIMIT,
    MemoryQuerySerializer,
    MemoryStoreSerializer,
    MemoryUpdateSerializer,
)
from apps.tenants.access import allows
from apps.tenants.scopes import Action

VALUE_HELP = 'Any JSON value: an object, a list, a "string", a number or true/false (not null).'


class KeyFilterForm(ConsoleForm):
    # The field is named as GET /memory's ?prefix=; the form metaclass takes it out of the class,
    # so BaseForm.prefix (the HTML name prefix) stays None.
    prefix = forms.CharField(  # type: ignore[assignment]
        label="Key prefix", required=False, strip=False, max_length=KEY_MAX_LENGTH, help_text="e.g. user/"
    )


class MemorySearchForm(ConsoleForm):
    q = forms.CharField(label="Search by meaning", max_length=QUERY_MAX_CHARACTERS, strip=False)
    key_prefix = forms.CharField(
        label="Only keys starting with", required=False, strip=False, max_length=KEY_MAX_LENGTH
    )
    limit = forms.IntegerField(label="Results", min_value=1, max_value=QUERY_MAX_LIMIT, initial=10)
    min_score = forms.FloatField(label="Minimum score", min_value=0, max_value=1, initial=0, required=False)


class MemoryCreateForm(ConsoleForm):
    key = forms.CharField(
        label="Key", strip=False, max_length=KEY_MAX_LENGTH, help_text="1-512 characters; / : . allowed"
    )
    value = forms.CharField(
        label="Value (JSON)", strip=False, widget=forms.Textarea(attrs={"rows": 12}), help_text=VALUE_HELP
    )


class MemoryEditForm(ConsoleForm):
    value = forms.CharField(
        label="Value (JSON)", strip=False, widget=forms.Textarea(attrs={"rows": 16}), help_text=VALUE_HELP
    )


def item_url(team: str, key: str, name: str = "dashboard:memory-item") -> str:
    return f"{reverse(name, kwargs={'team': team})}?{urlencode({'key': key})}"


class MemoryView(TeamPage):
    def keys_context(self, request: HttpRequest) -> dict[str, Any]:
        """The key list for ?prefix= and ?cursor=, as GET /memory lists them for this principal."""
        form = KeyFilterForm(request.GET or None)
        prefix = ""
        if form.is_bound and form.is_valid():
            prefix = form.cleaned_data["prefix"]
        items: list[MemoryItem] = []
        next_cursor = None
        if not form.errors:
            try:
                page = selectors.memory_item_list(
                    principal=self.principal,
                    prefix=services.validate_prefix(prefix),
                    cursor=request.GET.get("cursor") or None,
                    limit=PAGE_SIZE,
                )
                items, next_cursor = page.items, page.next_cursor
            except SERVICE_ERRORS as exc:
                show_errors(form, as_application_error(exc), {"prefix": "prefix", "cursor": "prefix"})
        next_query = urlencode({"prefix": prefix, "cursor": next_cursor}) if next_cursor else None
        first_query = urlencode({"prefix": prefix})
        return {
            "key_form": form,
            "prefix": prefix,
            "items": [
                {"key": item.key, "url": item_url(self.team.slug, item.key), "item": item} for item in items
            ],
            "next_query": next_query,
            "paged": bool(request.GET.get("cursor")),
            "first_query": first_query,
        }

    def search_context(self, request: HttpRequest) -> dict[str, Any]:
        """Results of the same semantic query as POST /memory/query, for ?q=."""
        form = MemorySearchForm(request.GET)
        results: list[dict[str, Any]] | None = None
        if form.is_valid():
            data = form.cleaned_data
            body: dict[str, Any] = {"query": data["q"], "limit": data["limit"]}
            if data.get("min_score") is not None:
                body["min_score"] = data["min_score"]
            if data.get("key_prefix"):
                body["filter"] = {"key_prefix": data["key_prefix"]}
            try:
                query = validated(MemoryQuerySerializer, body)
                results = selectors.memory_query(
                    principal=self.principal,
                    query=query["query"],
                    limit=query.get("limit") or 10,
                    min_score=query.get("min_score") or 0.0,
                    key_prefix=(query.get("filter") or {}).get("key_prefix"),
                )
            except SERVICE_ERRORS as exc:
                show_errors(
                    form,
                    as_application_error(exc),
                    {"query": "q", "filter": "key_prefix"},
                )
                results = None
        hits = [
            {**hit, "preview": pretty(hit["value"])[:300], "url": item_url(self.team.slug, hit["key"])}
            for hit in results or []
        ]
        return {"search_form": form, "hits": hits, "searched": results is not None}


class MemoryPage(MemoryView):
    """The key list (paginated, by prefix) and the search form; ?q= shows results without script."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        context = self.keys_context(request)
        if "q" in request.GET:
            context.update(self.search_context(request))
        else:
            context.update(search_form=MemorySearchForm(initial={"limit": 10}), hits=[], searched=False)
        context["can_write"] = may_write(self.principal, "memory")
        return render(request, "dashboard/memory/index.html", self.team_context(**context))


class MemoryKeysFragment(MemoryView):
    """The key list alone: what htmx swaps in for a prefix or the next page."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return render(request, "dashboard/memory/_keys.html", self.team_context(**self.keys_context(request)))


class MemorySearchFragment(MemoryView):
    """The results alone (errors included: htmx swaps in only 2xx answers)."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        context = self.search_context(request)
        return render(request, "dashboard/memory/_results.html", self.team_context(**context))


class MemoryItemView(TeamPage):
    def key_from(self, request: HttpRequest) -> str:
        key = request.GET.get("key", "")
        try:
            return services.validate_key(key)
        except ApplicationError:
            raise Http404("No such key") from None

    def load(self, key: str) -> MemoryItem:
        require(self.principal, Action("memory", "read", key))
        try:
            return selectors.memory_item_get(tenant=self.team, key=key)
        except ApplicationError:
            raise Http404(f"Memory key not found: {key}") from None


class MemoryItemPage(MemoryItemView):
    """One key: its value pretty-printed; with write access, the form that replaces it."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        key = self.key_from(request)
        item = self.load(key)
        form = MemoryEditForm(initial={"value": pretty(item.value)}) if self.writable(key) else None
        return self.show(request, item, form)

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        key = self.key_from(request)
        require(self.principal, Action("memory", "write", key))
        item = self.load(key)
        form = MemoryEditForm(request.POST)
        if form.is_valid():
            value = parse_json(form, "value")
            if not form.errors:
                try:
                    body = validated(MemoryUpdateSerializer, {"value": value})
                    services.memory_item_update(tenant=self.team, key=key, value=body["value"])
                except SERVICE_ERRORS as exc:
                    show_errors(form, as_application_error(exc))
                else:
                    messages.success(request, f"Saved {key}.")
                    return redirect(item_url(self.team.slug, key))
        return self.show(request, item, form, status=400)

    def writable(self, key: str) -> bool:
        return allows(self.principal, Action("memory", "write", key))

    def show(
        self, request: HttpRequest, item: MemoryItem, form: MemoryEditForm | None, status: int = 200
    ) -> HttpResponse:
        context = self.team_context(
            item=item,
            value=pretty(item.value),
            form=form,
            delete_url=item_url(self.team.slug, item.key, "dashboard:memory-delete"),
            action=item_url(self.team.slug, item.key),
        )
        return render(request, "dashboard/memory/item.html", context, status=status)


class MemoryDeletePage(MemoryItemView):
    """Asks first; the POST deletes (memory.<key>.write)."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        key = self.key_from(request)
        require(self.principal, Action("memory", "write", key))
        item = self.load(key)
        context = self.team_context(
            item=item,
            action=item_url(self.team.slug, key, "dashboard:memory-delete"),
            back=item_url(self.team.slug, key),
        )
        return render(request, "dashboard/memory/delete.html", context)

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        key = self.key_from(request)
        require(self.principal, Action("memory", "write", key))
        try:
            services.memory_item_delete(tenant=self.team, key=key)
        except ApplicationError:
            raise Http404(f"Memory key not found: {key}") from None
        messages.success(request, f"Deleted {key}.")
        return redirect("dashboard:memory", team=self.team.slug)


class MemoryNewPage(TeamPage):
    """A new key (an existing one is refused here: edit it instead)."""

    def dispatch_checks(self) -> None:
        if not may_write(self.principal, "memory"):
            raise PermissionDenied("Your role may not write memory")

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.dispatch_checks()
        return self.show(request, MemoryCreateForm(initial={"key": request.GET.get("key", "")}))

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.dispatch_checks()
        form = MemoryCreateForm(request.POST)
        if form.is_valid():
            key = form.cleaned_data["key"]
            try:
                services.validate_key(key)
            except ApplicationError as exc:
                show_errors(form, exc)
                return self.show(request, form, status=400)
            require(self.principal, Action("memory", "write", key))
            value = parse_json(form, "value")
            if not form.errors:
                try:
                    body = validated(MemoryStoreSerializer, {"key": key, "value": value})
                    if MemoryItem.objects.for_tenant(self.team).filter(key=key).exists():
                        raise ApplicationError(
                            f"The key {key} exists already; edit it instead",
                            code="conflict",
                            status=409,
                            extra={"details": {"key": ["Exists already: open it to edit its value."]}},
                        )
                    services.memory_item_store(tenant=self.team, key=body["key"], value=body["value"])
                except SERVICE_ERRORS as exc:
                    show_errors(form, as_application_error(exc))
                else:
                    messages.success(request, f"Stored {key}.")
                    return redirect(item_url(self.team.slug, key))
        return self.show(request, form, status=400)

    def show(self, request: HttpRequest, form: MemoryCreateForm, status: int = 200) -> HttpResponse:
        return render(request, "dashboard/memory/new.html", self.team_context(form=form), status=status)
