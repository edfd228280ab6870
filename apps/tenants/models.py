from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import TenantOwnedModel


def validate_public_scopes(value: object) -> None:
    """A tenant's public scopes are scope strings like a key's; a bad one is refused on save."""
    from django.core.exceptions import ValidationError

    from apps.tenants.scopes import ScopeError, parse_scopes

    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError('A list of scope strings, e.g. ["chat.*", "tools.safe.*"]')
    if value:
        try:
            parse_scopes(value)
        except ScopeError as exc:
            raise ValidationError(str(exc)) from None


AGENT_LIMIT_KEYS = ("max_steps", "max_fanout", "parallel_concurrency", "max_handoffs", "max_seconds")


def validate_agent_limits(value: object) -> None:
    """A tenant's own bounds of a multi-agent run (apps/agents/limits.py): positive numbers under
    the names of SLOP_AGENT_MAX_* (`{"max_steps": 12}`); what it leaves out is the platform's."""
    from django.core.exceptions import ValidationError

    if not isinstance(value, dict):
        raise ValidationError('An object, e.g. {"max_steps": 12, "max_seconds": 300}')
    for name, limit in value.items():
        if name not in AGENT_LIMIT_KEYS:
            raise ValidationError(f"Unknown agent limit {name!r} (one of {', '.join(AGENT_LIMIT_KEYS)})")
        if isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0:
            raise ValidationError(f"Agent limit {name} must be a positive number")


class Tenant(models.Model):
    """A team: everything it stores is its own."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute per API key; empty: the platform default"
    )
    public_scopes = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_public_scopes],
        help_text=(
            "Scopes of key-less requests under /t/<slug>/ (empty: no public surface). `*` covers "
            "chat, tools, memory and resources; pay (and any other area) only when named, e.g. pay.read"
        ),
    )
    agent_limits = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_agent_limits],
        help_text=(
            "This team's bounds of a multi-agent run, overriding SLOP_AGENT_MAX_*, e.g. "
            '{"max_steps": 12, "max_handoffs": 5, "max_seconds": 300}'
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(TenantOwnedModel):
    """A user's role in one team. Tenant-owned like every other row: a user belongs to several
    teams, so listing a user's memberships crosses tenants and needs `.unscoped()`."""

    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    # The base's field, with the reverse accessor it always had (`tenant.memberships`).
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships", db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class ApiKey(TenantOwnedModel):
    """An API key: only its prefix (to find it) and a SHA-256 of the whole key are stored."""

    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    monthly_token_cap = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="LLM tokens this key may use per billing period; empty: no cap of its own",
    )

    class Meta:
        verbose_name = "API key"
        indexes = [models.Index(fields=["tenant", "created_at"], name="apikey_tenant_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Invitation(TenantOwnedModel):
    """An e-mailed invitation to join a team with a role. The link carries a random token; only its
    SHA-256 is stored (like a key's), so the table cannot be used to join. Accepting it once, before
    `expires_at`, makes a Membership; the row stays as the record of who invited whom."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations", db_index=True)
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="invitation_tenant_created")]
        constraints = [
            # One open invitation per address and team (the owner resends it rather than stacking).
            models.UniqueConstraint(
                fields=["tenant", "email"],
                condition=models.Q(accepted_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant} ({self.role})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        return "expired" if self.is_expired else "pending"
