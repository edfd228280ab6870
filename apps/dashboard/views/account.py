"""Accounts: signing in and out, signing up (an account and its first team), passwords, another
team, and accepting an invitation. Django's auth views with the console's templates."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views import View

from apps.billing.accounts import account_for
from apps.billing.caps import ensure_seat_for_invitation
from apps.core.errors import ApplicationError
from apps.dashboard import limits
from apps.dashboard.forms.account import InvitedSignUpForm, SignInForm, SignUpForm, TeamCreateForm
from apps.dashboard.teams import memberships_of
from apps.tenants.models import Invitation, Membership
from apps.tenants.teams import invitation_accept, invitation_for_token, lock_team, team_create, user_create


def _too_many(request: HttpRequest, template: str, context: dict[str, Any], seconds: int) -> HttpResponse:
    response = render(request, template, {**context, "error": limits.message(seconds)}, status=429)
    response["Retry-After"] = str(seconds)
    return response


class Login(auth_views.LoginView):
    template_name = "dashboard/account/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(signup_open=settings.SLOP_SIGNUP_OPEN, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Refused before the password is checked, right or wrong, so guessing learns nothing.
        if (seconds := limits.exhausted(request, "signin")) is not None:
            return _too_many(request, self.template_name, self.get_context_data(), seconds)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        limits.count(self.request, "signin")
        return super().form_invalid(form)


class Logout(auth_views.LogoutView):
    """POST only (Django's): a link or an image on another site cannot sign anyone out."""


def _closed(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/account/signup_closed.html", status=403)


def _start_team(name: str, owner: Any) -> Any:
    """A new team owned by `owner`, on the free plan from the start (billing would make the
    account on first use anyway; made here, the plan page and caps see it at once)."""
    tenant = team_create(name=name, owner=owner)
    account_for(tenant)
    return tenant


class SignUp(View):
    """/console/signup: a new account and a new team it owns (SLOP_SIGNUP_OPEN)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.SLOP_SIGNUP_OPEN:
            return _closed(request)
        if request.user.is_authenticated:
            return redirect("dashboard:team_new")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "dashboard/account/signup.html", {"form": SignUpForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SignUpForm(request.POST)
        if (seconds := limits.exhausted(request, "signup")) is not None:
            return _too_many(request, "dashboard/account/signup.html", {"form": form}, seconds)
        if not form.is_valid():
            return render(request, "dashboard/account/signup.html", {"form": form}, status=400)
        data = form.cleaned_data
        with transaction.atomic():
            user = user_create(username=data["username"], email=data["email"], password=data["password1"])
            tenant = _start_team(data["team_name"], user)
        limits.count(request, "signup")
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome! {tenant.name} is yours, on the free plan.")
        return redirect("dashboard:team", team=tenant.slug)


class TeamCreate(LoginRequiredMixin, View):
    """/console/teams/new: another team for a signed-in user, who owns it."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and not settings.SLOP_SIGNUP_OPEN:
            return _closed(request)
        return super().dispatch(request, *args, **kwargs)

    def _page(self, request: HttpRequest, form: TeamCreateForm, status: int = 200) -> HttpResponse:
        context = {"form": form, "memberships": memberships_of(request.user)}
        return render(request, "dashboard/account/team_new.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(request, TeamCreateForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = TeamCreateForm(request.POST)
        if not form.is_valid():
            return self._page(request, form, status=400)
        with transaction.atomic():
            tenant = _start_team(form.cleaned_data["name"], request.user)
        messages.success(request, f"{tenant.name} is created; you are its owner.")
        return redirect("dashboard:team", team=tenant.slug)


class Account(LoginRequiredMixin, View):
    """/console/account: who you are, your teams, your password."""

    def get(self, request: HttpRequest) -> HttpResponse:
        context = {"memberships": memberships_of(request.user), "signup_open": settings.SLOP_SIGNUP_OPEN}
        return render(request, "dashboard/account/account.html", context)


class PasswordChange(auth_views.PasswordChangeView):
    template_name = "dashboard/account/password_change.html"
    success_url = reverse_lazy("dashboard:account")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password is changed; other sessions are signed out.")
        return response


class PasswordReset(auth_views.PasswordResetView):
    template_name = "dashboard/account/password_reset.html"
    email_template_name = "dashboard/account/email/password_reset.txt"
    subject_template_name = "dashboard/account/email/password_reset_subject.txt"
    # Django logs a failed send and answers as if it went: the page never tells whether an
    # address has an account.
    success_url = reverse_lazy("dashboard:password_reset_done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (seconds := limits.exhausted(request, "password_reset")) is not None:
            return _too_many(request, self.template_name, self.get_context_data(), seconds)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        limits.count(self.request, "password_reset")
        return super().form_valid(form)


class PasswordResetDone(auth_views.PasswordResetDoneView):
    template_name = "dashboard/account/password_reset_done.html"


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    template_name = "dashboard/account/password_reset_confirm.html"
    success_url = reverse_lazy("dashboard:password_reset_complete")


class PasswordResetComplete(auth_views.PasswordResetCompleteView):
    template_name = "dashboard/account/password_reset_complete.html"


class InvitationAccept(View):
    """/console/invite/<token>: join the invitation's team, signed in or with a new account.

    The token decides the team (an invitation never joins any other); a link that is unknown,
    withdrawn, expired or used is refused with its reason and joins nobody."""

    template = "dashboard/account/invitation.html"

    def _page(
        self,
        request: HttpRequest,
        invitation: Invitation,
        form: Any = None,
        error: str = "",
        status: int = 200,
    ) -> HttpResponse:
        member = request.user.is_authenticated and (
            Membership.objects.for_tenant(invitation.tenant).filter(user=request.user).exists()
        )
        context = {
            "invitation": invitation,
            "already_member": member,
            "form": form if form is not None else InvitedSignUpForm(email=invitation.email),
            "error": error,
            "memberships": memberships_of(request.user),
        }
        return render(request, self.template, context, status=status)

    def _refused(self, request: HttpRequest, error: ApplicationError) -> HttpResponse:
        context = {"error": error.message, "memberships": memberships_of(request.user)}
        return render(request, "dashboard/account/invitation_refused.html", context, status=error.status)

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            invitation = invitation_for_token(token)
        except ApplicationError as refused:
            return self._refused(request, refused)
        return self._page(request, invitation)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            invitation = invitation_for_token(token)
        except ApplicationError as refused:
            return self._refused(request, refused)
        form = None
        try:
            with transaction.atomic():
                if request.user.is_authenticated:
                    user = request.user
                else:
                    form = InvitedSignUpForm(request.POST, email=invitation.email)
                    if (seconds := limits.exhausted(request, "signup")) is not None:
                        limited = self._page(request, invitation, form, limits.message(seconds), status=429)
                        limited["Retry-After"] = str(seconds)
                        return limited
                    if not form.is_valid():
                        return self._page(request, invitation, form=form, status=400)
                    user = user_create(
                        username=form.cleaned_data["username"],
                        email=invitation.email,
                        password=form.cleaned_data["password1"],
                    )
                lock_team(invitation.tenant)
                ensure_seat_for_invitation(invitation.tenant)
                membership = invitation_accept(token=token, user=user)
        except ApplicationError as refused:
            return self._page(request, invitation, form=form, error=refused.message, status=refused.status)
        if not request.user.is_authenticated:
            limits.count(request, "signup")
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"You joined {membership.tenant.name} as {membership.role}.")
        return redirect("dashboard:team", team=membership.tenant.slug)
