"""The console's routes. Account pages (sign-in, sign-up, invitations) at /console/…, a team's pages
at /console/t/<team>/…; each section of the console adds its routes here."""

from __future__ import annotations

from django.urls import include, path

from apps.dashboard.views import account, agents, billing, home, keys, members, playground, usage
from apps.dashboard.views import memory as memory_views
from apps.dashboard.views import resources as resource_views
from apps.dashboard.views import tools as tool_views

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
    # usage and billing (dash-usage)
    path("usage/", usage.Usage.as_view(), name="usage"),
    path("billing/", billing.Billing.as_view(), name="billing"),
    path("billing/checkout", billing.Checkout.as_view(), name="billing-checkout"),
    path("billing/portal", billing.Portal.as_view(), name="billing-portal"),
    # Memory, resources, tools & jobs (views/memory.py, resources.py, tools.py). Items are named
    # in the query string (?key=, ?id=): memory keys and resource ids may hold any path.
    path("memory/", memory_views.MemoryPage.as_view(), name="memory"),
    path("memory/keys", memory_views.MemoryKeysFragment.as_view(), name="memory-keys"),
    path("memory/search", memory_views.MemorySearchFragment.as_view(), name="memory-search"),
    path("memory/new", memory_views.MemoryNewPage.as_view(), name="memory-new"),
    path("memory/item", memory_views.MemoryItemPage.as_view(), name="memory-item"),
    path("memory/delete", memory_views.MemoryDeletePage.as_view(), name="memory-delete"),
    path("resources/", resource_views.ResourcesPage.as_view(), name="resources"),
    path("resources/list", resource_views.ResourceListFragment.as_view(), name="resources-list"),
    path("resources/search", resource_views.ResourceSearchFragment.as_view(), name="resources-search"),
    path("resources/new", resource_views.ResourceNewPage.as_view(), name="resource-new"),
    path("resources/upload", resource_views.ResourceUploadPage.as_view(), name="resource-upload"),
    path("resources/item", resource_views.ResourcePage.as_view(), name="resource"),
    path("resources/edit", resource_views.ResourceEditPage.as_view(), name="resource-edit"),
    path("resources/delete", resource_views.ResourceDeletePage.as_view(), name="resource-delete"),
    path("tools/", tool_views.ToolsPage.as_view(), name="tools"),
    path("tools/new", tool_views.ToolNewPage.as_view(), name="tool-new"),
    path("tools/jobs", tool_views.JobListFragment.as_view(), name="jobs"),
    path("tools/jobs/<str:job_id>", tool_views.JobStatusFragment.as_view(), name="job"),
    path("tools/jobs/<str:job_id>/cancel", tool_views.JobCancelPage.as_view(), name="job-cancel"),
    path("tools/<str:tool_id>/edit", tool_views.ToolEditPage.as_view(), name="tool-edit"),
    path("tools/<str:tool_id>/delete", tool_views.ToolDeletePage.as_view(), name="tool-delete"),
    # Playground and agents (dash-play)
    path("playground", playground.Playground.as_view(), name="playground"),
    path("playground/threads", playground.PlaygroundThreads.as_view(), name="playground-threads"),
    path("playground/ticket", playground.PlaygroundTicket.as_view(), name="playground-ticket"),
    path("agents", agents.AgentList.as_view(), name="agents"),
    path("agents/new", agents.AgentCreate.as_view(), name="agent-create"),
    path("agents/<slug:agent_id>/edit", agents.AgentEdit.as_view(), name="agent-edit"),
    path("agents/<slug:agent_id>/delete", agents.AgentDelete.as_view(), name="agent-delete"),
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
