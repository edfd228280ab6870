"""Operators' admin for tenants, memberships and API keys (crossing tenants on purpose)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.core.admin import OperatorAdmin, OperatorTabularInline
from apps.core.errors import ApplicationError
from apps.tenants.authentication import forget_keys
from apps.tenants.models import ApiKey, Invitation, Membership, Tenant
from apps.tenants.services import api_key_create, api_key_create_check, normalise_scopes


class MembershipInline(OperatorTabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        # The formset narrows this to the tenant on the page; an unsaved tenant gets .none().
        return Membership.objects.unscoped().select_related("user")


@admin.register(Tenant)
class TenantAdmin(OperatorAdmin):
    list_display = ["slug", "name", "is_active", "rate_limit_per_minute", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(OperatorAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "tenant__slug"]
    autocomplete_fields = ["user", "tenant"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return Membership.objects.unscoped().select_related("user", "tenant")


class ApiKeyCreateForm(forms.ModelForm):
    scopes_text = forms.CharField(
        label="Scopes", initial="*", help_text='Comma-separated, e.g. "chat.*,memory.user.*,tools.safe.*"'
    )
    expires_in_days = forms.IntegerField(required=False, min_value=1)

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "monthly_token_cap"]

    def clean_scopes_text(self) -> list[str]:
        try:
            return normalise_scopes(self.cleaned_data["scopes_text"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        tenant = cleaned.get("tenant")
        if tenant is not None:
            # The plan's cap on keys (billing's check) shown on the form, not as an error page.
            try:
                api_key_create_check(tenant=tenant)
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorAdmin):
    list_display = [
        "prefix",
        "name",
        "tenant",
        "scopes",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "created_at",
    ]
    list_filter = ["tenant"]
    search_fields = ["prefix", "name", "tenant__slug"]
    readonly_fields = ["prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).select_related("tenant")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["tenant", "name", "scopes_text", "expires_in_days", "monthly_token_cap"]
        return [
            "tenant",
            "name",
            "prefix",
            "scopes",
            "created_by",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "monthly_token_cap",
        ]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = api_key_create(
            tenant=form.cleaned_data["tenant"],
            scopes=form.cleaned_data["scopes_text"],
            name=form.cleaned_data["name"],
            expires_in_days=form.cleaned_data.get("expires_in_days"),
            created_by_id=request.user.pk,
            monthly_token_cap=form.cleaned_data.get("monthly_token_cap"),
        )
        obj.pk = issued.api_key.pk
        obj.__dict__.update({k: v for k, v in issued.api_key.__dict__.items() if not k.startswith("_")})
        messages.warning(request, f"The new API key (shown this once; copy it now): {issued.plaintext}")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoking = queryset.filter(revoked_at__isnull=True)
        prefixes = list(revoking.values_list("prefix", flat=True))
        count = revoking.update(revoked_at=timezone.now())
        forget_keys(prefixes=prefixes)  # an update sends no signal
        self.message_user(request, f"Revoked {count} key(s); every process refuses them now.")


@admin.register(Invitation)
class InvitationAdmin(OperatorAdmin):
    """Invitations are made from the console (the e-mail carries the only copy of the token): here
    operators see them and can withdraw one (delete), not make or edit one."""

    list_display = ["email", "tenant", "role", "invited_by", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["email", "tenant__slug"]
    exclude = ["token_hash"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invitation]:
        return super().get_queryset(request).select_related("tenant", "invited_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
