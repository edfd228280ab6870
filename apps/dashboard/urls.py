"""The console's routes. Account pages (sign-in, sign-up, invitations) at /console/…, a team's pages
at /console/t/<team>/…; each section of the console adds its routes here."""

from __future__ import annotations

from django.urls import include, path

from apps.dashboard.views import account, home, keys, members

app_name = "dashboard"

team_urls = [
    path("", home.TeamHome.as_view(), name="team"),
    # Access (dash-access): keys, members, invitations.
    path("keys", keys.KeyList.as_view(), name="keys"),
    path("keys/new", keys.KeyCreate.as_view(), name="key_new"),
    path("keys/<slug:prefix>/revoke", keys.KeyRevoke.as_view(), name="key_revoke"),
    path("members", members.MemberList.as_view(), name="members"),
    path("leave", members.LeaveTeam.as_view(), name="team_leave"),
    path("members/invite", members.Invite.as_view(), name="member_invite"),
    path("members/<int:member_id>/role", members.RoleChange.as_view(), name="member_role"),
    path("members/<int:member_id>/remove", members.MemberRemove.as_view(), name="member_remove"),
    path(
        "invitations/<int:invitation_id>/resend", members.InvitationResend.as_view(), name="invitation_resend"
    ),
    path(
        "invitations/<int:invitation_id>/withdraw",
        members.InvitationWithdraw.as_view(),
        name="invitation_withdraw",
    ),
]

urlpatterns = [
    path("", home.Landing.as_view(), name="landing"),
    path("login", account.Login.as_view(), name="login"),
    path("logout", account.Logout.as_view(), name="logout"),
    # Accounts (dash-access).
    path("signup", account.SignUp.as_view(), name="signup"),
    path("account", account.Account.as_view(), name="account"),
    path("account/password", account.PasswordChange.as_view(), name="password_change"),
    path("password-reset", account.PasswordReset.as_view(), name="password_reset"),
    path("password-reset/sent", account.PasswordResetDone.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>", account.PasswordResetConfirm.as_view(), name="password_reset_confirm"),
    path("reset/done", account.PasswordResetComplete.as_view(), name="password_reset_complete"),
    path("teams/new", account.TeamCreate.as_view(), name="team_new"),
    path("invite/<str:token>", account.InvitationAccept.as_view(), name="invitation_accept"),
    path("t/<slug:team>/", include(team_urls)),
]
