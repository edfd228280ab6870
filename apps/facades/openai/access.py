"""What /v1 needs, in the access vocabulary (apps/tenants/access.py): a completion needs what
POST /chat needs (`chat.write`) and, for `"model": "agent:<id>"`, `agents.<id>.execute` on an agent
of the team; listing models needs `chat.write` on something (it lists what the key may use)."""

from __future__ import annotations

from apps.agents.models import Agent
from apps.facades.openai.completions import agent_id_of
from apps.facades.openai.errors import model_not_found
from apps.tenants.access import Context, NeedSome, NeedTarget, Target, check
from apps.tenants.authentication import Principal
from apps.tenants.scopes import Action

CHAT = Action("chat", "write", None)


def _completion_target(principal: Principal, context: Context) -> Target:
    model = context.body().get("model")
    check(principal, CHAT)
    agent_id = agent_id_of(model)
    if agent_id is None:
        return Target(obj=None, any_of=())
    agent = Agent.objects.for_tenant(principal.tenant).filter(slug=agent_id).first()
    return Target(
        obj=agent,
        any_of=(Action("agents", "execute", agent_id),),
        missing=model_not_found(str(model)) if agent is None else None,
    )


COMPLETE = NeedTarget(_completion_target)
LIST_MODELS = NeedSome("chat", "write")
