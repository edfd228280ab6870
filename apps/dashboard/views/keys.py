"""The API keys page (admins and owners): the team's keys, a new key (its secret shown once),
revoking one. Keys are made and revoked through apps.tenants.services, within the plan's key cap
(apps.billing.caps), with no more scopes than the member's role holds."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers

from apps.billing.caps import ensure_room
from apps.core.errors import ApplicationError
from apps.dashboard.forms.keys import AREAS, PRESETS, KeyCreateForm
from apps.dashboard.teams import TeamPage
from apps.tenants.models import ApiKey
from apps.tenants.roles import Role
from apps.tenants.services import api_key_create, api_key_revoke
from apps.tenants.teams import lock_team

# The session entry holding a new key's secret from the POST that made it to the one page that
# shows it (then it is deleted): a redirect keeps a reload from making a second key, and the
# secret never travels in a URL or a cookie.
NEW_KEY = "dashboard.new_key"


def key_status(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return "active" if key.is_active else "expired"


class KeysPage(TeamPage):
    role = Role.ADMIN

    def team_key(self, prefix: str) -> ApiKey:
        key = ApiKey.objects.for_tenant(self.team).filter(prefix=prefix).select_related("created_by").first()
        if key is None:
            raise Http404("No such key")
        return key


class KeyList(KeysPage):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        new_key = request.session.get(NEW_KEY)
        if new_key is not None and new_key.get("team") == self.team.pk:
            del request.session[NEW_KEY]  # shown this once
        else:
            new_key = None  # none, or made for another team: never shown on this one's page
        keys = (
            ApiKey.objects.for_tenant(self.team).select_related("created_by").order_by("-created_at", "-pk")
        )
        page = Paginator(keys, 50).get_page(request.GET.get("page"))
        rows = [{"key": key, "status": key_status(key)} for key in page]
        context = self.team_context(rows=rows, page=page, new_key=new_key)
        response = render(request, "dashboard/keys/list.html", context)
        add_never_cache_headers(response)  # the secret must not come back from the cache
        return response


class KeyCreate(KeysPage):
    def _page(self, form: KeyCreateForm, status: int = 200) -> HttpResponse:
        context = self.team_context(form=form, presets=PRESETS, areas=AREAS)
        return render(self.request, "dashboard/keys/new.html", context, status=status)

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self._page(KeyCreateForm(granted=self.principal.scopes.granted))

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = KeyCreateForm(request.POST, granted=self.principal.scopes.granted)
        if not form.is_valid():
            return self._page(form, status=400)
        data = form.cleaned_data
        try:
            with transaction.atomic():
                lock_team(self.team)
                ensure_room(self.team, "api_keys")
                issued = api_key_create(
                    tenant=self.team,
                    scopes=data["scopes"],
                    name=data["name"],
                    expires_at=data["expires_at"],
                    created_by_id=request.user.pk,
                    monthly_token_cap=data["monthly_token_cap"],
                )
        except ApplicationError as refused:
            form.add_error(None, refused.message)
            return self._page(form, status=refused.status)
        request.session[NEW_KEY] = {
            "team": self.team.pk,
            "name": issued.api_key.name,
            "prefix": issued.api_key.prefix,
            "secret": issued.plaintext,
        }
        return redirect("dashboard:keys", team=self.team.slug)


class KeyRevoke(KeysPage):
    def get(self, request: HttpRequest, prefix: str, **kwargs: Any) -> HttpResponse:
        key = self.team_key(prefix)
        context = self.team_context(key=key, status=key_status(key))
        return render(request, "dashboard/keys/revoke.html", context)

    def post(self, request: HttpRequest, prefix: str, **kwargs: Any) -> HttpResponse:
        key = self.team_key(prefix)  # this team's, or a 404: api_key_revoke looks up by prefix alone
        if key.revoked_at is None:
            api_key_revoke(prefix=key.prefix)
            messages.success(
                request, f"Key {key.name} ({key.prefix}) is revoked; requests with it are refused."
            )
        return redirect("dashboard:keys", team=self.team.slug)
