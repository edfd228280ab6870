"""Writes for a team's people: a new team with its owner, roles, removals and invitations.

A team always keeps an owner: a role change or a removal locks the team's memberships first and
refuses to take the last owner away, so two owners demoting each other at once cannot both win.
How many members a plan allows is billing's business (a layer above this one): callers check
`apps.billing.caps.ensure_room(tenant, "members")` before `invitation_create` (open invitations
count as members there) and `ensure_seat_for_invitation(tenant)` before `invitation_accept`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.tenants.models import Invitation, Membership, Tenant
from apps.tenants.services import tenant_create

Role = Membership.Role
INVITATION_LIFETIME = timedelta(days=7)


def normalise_email(email: str) -> str:
    """Addresses compare without case (nobody's mail server tells Alice@ from alice@)."""
    address = email.strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise ApplicationError(f"{email!r} is not an e-mail address", code="validation_error") from None
    return address


def _role(role: str) -> str:
    if role not in Role.values:
        raise ApplicationError(
            f"Unknown role {role!r} (one of {', '.join(Role.values)})", code="validation_error"
        )
    return role


@transaction.atomic
def team_create(*, name: str, owner: Any) -> Tenant:
    """A new team with `owner` as its owner (sign-up, "create another team")."""
    tenant = tenant_create(name=name)
    Membership.objects.for_tenant(tenant).create(tenant=tenant, user=owner, role=Role.OWNER)
    return tenant


def _locked_members(tenant: Tenant) -> list[Membership]:
    return list(Membership.objects.for_tenant(tenant).select_for_update().order_by("pk"))


def _keeps_an_owner(members: list[Membership], changed: Membership, new_role: str | None) -> bool:
    owners = [m for m in members if m.role == Role.OWNER and m.pk != changed.pk]
    return bool(owners) or new_role == Role.OWNER


@transaction.atomic
def membership_role_set(*, tenant: Tenant, membership_id: int, role: str) -> Membership:
    role = _role(role)
    members = _locked_members(tenant)
    membership = next((m for m in members if m.pk == membership_id), None)
    if membership is None:
        raise ApplicationError("No such member", code="not_found", status=404)
    if not _keeps_an_owner(members, membership, role):
        raise ApplicationError(
            "A team needs at least one owner: make someone else owner first", code="last_owner", status=409
        )
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, tenant: Tenant, membership_id: int) -> Membership:
    members = _locked_members(tenant)
    membership = next((m for m in members if m.pk == membership_id), None)
    if membership is None:
        raise ApplicationError("No such member", code="not_found", status=404)
    if not _keeps_an_owner(members, membership, None):
        raise ApplicationError(
            "A team needs at least one owner: make someone else owner before removing the last one",
            code="last_owner",
            status=409,
        )
    membership.delete()
    return membership


# --- Invitations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # goes into the e-mailed link, never stored


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def pending_invitations(tenant: Tenant | int) -> int:
    """Open invitations that can still be accepted: each will take a seat."""
    open_ones = Invitation.objects.for_tenant(tenant).filter(accepted_at=None, expires_at__gt=timezone.now())
    return int(open_ones.count())


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, email: str, role: str, invited_by_id: int | None
) -> IssuedInvitation:
    address = normalise_email(email)
    role = _role(role)
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=address).exists():
        raise ApplicationError(f"{address} is already a member of this team", code="conflict", status=409)
    token, token_hash = _new_token()
    expires_at = timezone.now() + INVITATION_LIFETIME
    existing = (
        Invitation.objects.for_tenant(tenant)
        .select_for_update()
        .filter(email=address, accepted_at=None)
        .first()
    )
    if existing is not None and not existing.is_expired:
        raise ApplicationError(
            f"{address} is already invited; resend or withdraw that invitation", code="conflict", status=409
        )
    if existing is not None:  # an expired one: issue it again, with the role asked for now
        existing.role, existing.token_hash, existing.expires_at = role, token_hash, expires_at
        existing.invited_by_id = invited_by_id
        existing.save(update_fields=["role", "token_hash", "expires_at", "invited_by"])
        return IssuedInvitation(invitation=existing, token=token)
    invitation = Invitation.objects.for_tenant(tenant).create(
        tenant=tenant,
        email=address,
        role=role,
        token_hash=token_hash,
        invited_by_id=invited_by_id,
        expires_at=expires_at,
    )
    return IssuedInvitation(invitation=invitation, token=token)


def _open_invitation(tenant: Tenant, invitation_id: int) -> Invitation:
    invitation = (
        Invitation.objects.for_tenant(tenant)
        .select_for_update()
        .filter(pk=invitation_id, accepted_at=None)
        .first()
    )
    if invitation is None:
        raise ApplicationError("No such open invitation", code="not_found", status=404)
    return invitation


@transaction.atomic
def invitation_resend(*, tenant: Tenant, invitation_id: int) -> IssuedInvitation:
    """A new link (the old one stops working) and a new week to use it."""
    invitation = _open_invitation(tenant, invitation_id)
    token, invitation.token_hash = _new_token()
    invitation.expires_at = timezone.now() + INVITATION_LIFETIME
    invitation.save(update_fields=["token_hash", "expires_at"])
    return IssuedInvitation(invitation=invitation, token=token)


@transaction.atomic
def invitation_withdraw(*, tenant: Tenant, invitation_id: int) -> None:
    _open_invitation(tenant, invitation_id).delete()


def invitation_for_token(token: str) -> Invitation:
    """The invitation a link's token opens, or a clear refusal. The token decides the team, so
    this is a lookup across tenants (by a unique hash), like an API key's."""
    invitation = (
        Invitation.objects.unscoped().filter(token_hash=hash_token(token)).select_related("tenant").first()
        if token
        else None
    )
    if invitation is None or not invitation.tenant.is_active:
        raise ApplicationError(
            "This invitation link is not valid: it may have been withdrawn or replaced by a newer one",
            code="invitation_invalid",
            status=404,
        )
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation has already been used", code="invitation_used", status=410)
    if invitation.is_expired:
        raise ApplicationError(
            "This invitation has expired: ask the team's owner to send a new one",
            code="invitation_expired",
            status=410,
        )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: Any) -> Membership:
    """Joins `user` to the invitation's team with its role, once."""
    found = invitation_for_token(token)
    # Locked and checked again: two clicks on one link make one membership.
    invitation = Invitation.objects.for_tenant(found.tenant_id).select_for_update().get(pk=found.pk)
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation has already been used", code="invitation_used", status=410)
    tenant = found.tenant
    if Membership.objects.for_tenant(tenant).filter(user=user).exists():
        raise ApplicationError(f"You are already a member of {tenant.name}", code="conflict", status=409)
    membership = Membership.objects.for_tenant(tenant).create(tenant=tenant, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def user_create(*, username: str, email: str, password: str) -> Any:
    """A new account (sign-up, or accepting an invitation without one)."""
    return get_user_model().objects.create_user(username, email=normalise_email(email), password=password)


def lock_team(tenant: Tenant) -> None:
    """Within a transaction: holds the team's row until it ends, so a cap's count and the row it
    admits are one step (two requests cannot both take the last seat or key)."""
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
