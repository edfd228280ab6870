"""What a member's role lets them do in the team console (apps/dashboard), decided on the server.

Here, beside keys, because the console's tickets for streams (apps/chat/tickets.py) and the console
both need it, and chat sits below the dashboard.

A page declares the least role it needs (`TeamPage.role`); the services a page calls act for a
`Principal` made from the membership (`console_principal`), whose scopes are the role's, so the
console can never do more than the same member could with a key of those scopes.
- owner: everything, billing and members included;
- admin: keys, tools, agents, models, memory and resources, but not billing or members;
- member: the playground (chat, running agents and safe tools) and read-only lists.
"""

from __future__ import annotations

from apps.tenants.authentication import Principal
from apps.tenants.models import Membership
from apps.tenants.scopes import EffectiveScopes, parse_scopes

Role = Membership.Role

RANK = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}

ROLE_SCOPES: dict[str, list[str]] = {
    Role.OWNER: ["*"],
    Role.ADMIN: ["*"],
    Role.MEMBER: [
        "chat.*",
        "agents.read",
        "agents.execute",
        "tools.list",
        "tools.read",
        "tools.safe.*",
        "memory.read",
        "resources.read",
        "usage.read",
    ],
}


def at_least(membership: Membership, role: str) -> bool:
    return RANK[Role(membership.role)] >= RANK[Role(role)]


def console_principal(membership: Membership) -> Principal:
    """The caller the services see for a member using the console: the team, no key, the role's
    scopes. `user_id` tells it from the public surface (which has no key either)."""
    return Principal(
        tenant=membership.tenant,
        key_id=None,
        key_prefix="",
        scopes=EffectiveScopes(granted=parse_scopes(ROLE_SCOPES[membership.role])),
        user_id=membership.user_id,
    )
