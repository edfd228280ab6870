"""The members page (owners only): who is in the team with which role, invitations by e-mail,
role changes and removals. The plan's seat limit is checked before any invitation or membership
is made (apps.billing.caps), and the team always keeps an owner (apps.tenants.teams)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.billing.accounts import account_for
from apps.billing.caps import ensure_room
from apps.core.errors import ApplicationError
from apps.dashboard.forms.members import InviteForm, RoleForm
from apps.dashboard.mail import send_templated
from apps.dashboard.teams import TeamPage
from apps.tenants.models import Invitation, Membership
from apps.tenants.roles import Role
from apps.tenants.teams import (
    IssuedInvitation,
    invitation_create,
    invitation_resend,
    invitation_withdraw,
    lock_team,
    membership_remove,
    membership_role_set,
    pending_invitations,
)


class MembersPage(TeamPage):
    role = Role.OWNER

    def page(
        self, *, invite_form: InviteForm | None = None, error: str = "", status: int = 200
    ) -> HttpResponse:
        members = Membership.objects.for_tenant(self.team).select_related("user").order_by("created_at", "pk")
        invitations = (
            Invitation.objects.for_tenant(self.team)
            .filter(accepted_at=None)
            .select_related("invited_by")
            .order_by("-created_at")
        )
        rows = [
            {"membership": m, "form": RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}")} for m in members
        ]
        pending = pending_invitations(self.team)
        seats = {
            "members": len(rows),
            "invitations": pending,
            "used": len(rows) + pending,  # as the plan's cap counts them (apps/billing/caps.py)
            "limit": account_for(self.team).effective_plan.included_members,
        }
        context = self.team_context(
            rows=rows,
            invitations=list(invitations),
            seats=seats,
            invite_form=invite_form or InviteForm(),
            error=error,
        )
        return render(self.request, "dashboard/members/list.html", context, status=status)

    def member(self, member_id: int) -> Membership:
        membership = (
            Membership.objects.for_tenant(self.team).select_related("user").filter(pk=member_id).first()
        )
        if membership is None:
            raise Http404("No such member")
        return membership

    def back(self) -> HttpResponse:
        return redirect("dashboard:members", team=self.team.slug)

    def send_invitation(self, issued: IssuedInvitation) -> None:
        """Called once the invitation is committed: no e-mail announces one that was rolled back."""
        link = self.request.build_absolute_uri(reverse("dashboard:invitation_accept", args=[issued.token]))
        context = {
            "invitation": issued.invitation,
            "link": link,
            "team": self.team,
            "inviter": self.request.user,
        }
        invitation = issued.invitation
        if send_templated("dashboard/members/email/invitation", context, invitation.email):
            messages.success(self.request, f"Invitation sent to {invitation.email}.")
        else:
            messages.warning(
                self.request,
                f"The e-mail to {invitation.email} could not be sent; give them this link yourself: {link}",
            )


class MemberList(MembersPage):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.page()


class Invite(MembersPage):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.back()

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = InviteForm(request.POST)
        if not form.is_valid():
            return self.page(invite_form=form, status=400)
        try:
            with transaction.atomic():
                lock_team(self.team)
                # Open invitations count as members: each will take a seat when it is accepted.
                ensure_room(self.team, "members")
                issued = invitation_create(
                    tenant=self.team,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by_id=request.user.pk,
                )
        except ApplicationError as refused:
            form.add_error(None, refused.message)
            return self.page(invite_form=form, status=refused.status)
        self.send_invitation(issued)
        return self.back()


class RoleChange(MembersPage):
    def post(self, request: HttpRequest, member_id: int, **kwargs: Any) -> HttpResponse:
        membership = self.member(member_id)
        form = RoleForm(request.POST, prefix=f"m{membership.pk}")
        if not form.is_valid():
            return self.page(
                error=f"Choose a role for {membership.user}: owner, admin or member.", status=400
            )
        try:
            changed = membership_role_set(
                tenant=self.team, membership_id=membership.pk, role=form.cleaned_data["role"]
            )
        except ApplicationError as refused:
            return self.page(error=refused.message, status=refused.status)
        messages.success(request, f"{membership.user} is now {changed.role}.")
        if changed.pk == self.membership.pk and changed.role != Role.OWNER:
            return redirect("dashboard:team", team=self.team.slug)  # no longer sees this page
        return self.back()


class MemberRemove(MembersPage):
    def get(self, request: HttpRequest, member_id: int, **kwargs: Any) -> HttpResponse:
        context = self.team_context(target=self.member(member_id))
        return render(request, "dashboard/members/remove.html", context)

    def post(self, request: HttpRequest, member_id: int, **kwargs: Any) -> HttpResponse:
        membership = self.member(member_id)
        try:
            membership_remove(tenant=self.team, membership_id=membership.pk)
        except ApplicationError as refused:
            return self.page(error=refused.message, status=refused.status)
        if membership.pk == self.membership.pk:
            messages.success(request, f"You left {self.team.name}.")
            return redirect("dashboard:landing")
        messages.success(request, f"{membership.user} is no longer a member of {self.team.name}.")
        return self.back()


class InvitationResend(MembersPage):
    def post(self, request: HttpRequest, invitation_id: int, **kwargs: Any) -> HttpResponse:
        try:
            issued = invitation_resend(tenant=self.team, invitation_id=invitation_id)
        except ApplicationError as refused:
            return self.page(error=refused.message, status=refused.status)
        self.send_invitation(issued)
        return self.back()


class InvitationWithdraw(MembersPage):
    def post(self, request: HttpRequest, invitation_id: int, **kwargs: Any) -> HttpResponse:
        try:
            invitation_withdraw(tenant=self.team, invitation_id=invitation_id)
        except ApplicationError as refused:
            return self.page(error=refused.message, status=refused.status)
        messages.success(request, "The invitation is withdrawn; its link no longer works.")
        return self.back()


class LeaveTeam(TeamPage):
    """/console/t/<team>/leave: any member leaves the team (the last owner cannot)."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return render(request, "dashboard/members/remove.html", self.team_context(target=self.membership))

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            membership_remove(tenant=self.team, membership_id=self.membership.pk)
        except ApplicationError as refused:
            context = self.team_context(target=self.membership, error=refused.message)
            return render(request, "dashboard/members/remove.html", context, status=refused.status)
        messages.success(request, f"You left {self.team.name}.")
        return redirect("dashboard:landing")
