"""Every registered admin opens: list, add, change and delete pages, as a superuser.

Each registered model gets at least one real row (through the services or the API where they
exist), then its pages are fetched. A model registered without a row here fails the test, so a new
admin cannot ship without being opened once. Where adding or changing is off on purpose, the test
asserts exactly that (403 on add, a read-only change page).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db import models
from django.test import Client
from django.utils import timezone

from apps.agents.models import Agent
from apps.agents.services import agent_create
from apps.billing.accounts import account_for
from apps.billing.models import BillingAccount, BillingStripeEvent, Plan
from apps.chat.models import Chat, Message, Thread
from apps.core.admin import OperatorAdmin
from apps.llm.models import ModelConfig, UsageRecord
from apps.llm.services import model_config_create, usage_record
from apps.memory.models import MemoryItem
from apps.memory.services import memory_item_store
from apps.pay.models import Payment, PaymentSettings, StripeEvent
from apps.resources.models import Resource
from apps.resources.services import resource_create
from apps.tenants.models import ApiKey, Invitation, Membership, Tenant
from apps.tenants.services import api_key_create
from apps.tenants.teams import invitation_create
from apps.tools.models import Tool, ToolJob
from tests.billing.plans import seed_plans

pytestmark = pytest.mark.django_db

# Models whose rows only the platform writes (an exchange, a payment, a job, a Stripe event,
# metered usage): the admin shows them and offers no "add".
NO_ADD = {Chat, Thread, Payment, StripeEvent, ToolJob, UsageRecord, BillingStripeEvent, Invitation}
# Payments are never deleted (Stripe holds the money; a refund is the way back).
NO_DELETE = {Payment}
# Records that are never edited by hand: the change page is a read-only view.
VIEW_ONLY = {Chat, UsageRecord, Invitation}


@pytest.fixture
def operator() -> tuple[Client, User]:
    user = User.objects.create_superuser("operator", "op@example.com", "pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client, user


def _rows(tenant: Tenant, user: User, chat_client: Any) -> dict[type[models.Model], Callable[[], Any]]:
    """One way to make a real row of every model the admin registers."""

    def chats() -> None:
        for body in (
            {"messages": [{"content": "hello admin"}]},
            {"thread_id": "thread_admin", "messages": [{"content": "hello thread"}]},
        ):
            assert chat_client.post("/chat", body, format="json").status_code == 200

    def tool_job() -> None:
        tool = Tool.objects.for_tenant(tenant).get(slug="weather")
        ToolJob.objects.create(
            tenant=tenant, public_id="job_ADMINPAGES", tool=tool, tool_slug=tool.slug, timeout_seconds=5
        )

    def payment() -> Payment:
        return Payment.objects.create(
            id="tx_ADMINPAGES", tenant=tenant, amount=Decimal("5.00"), amount_minor=500, currency="USD",
            payment_method="pm_card_visa", request_fingerprint="0" * 64,
        )  # fmt: skip

    def stripe_event() -> None:
        StripeEvent.objects.create(
            event_id="evt_adminpages", type="payment_intent.succeeded", tenant=tenant, payment=payment(),
            created=int(timezone.now().timestamp()),
        )  # fmt: skip

    def billing_account() -> None:
        account = account_for(tenant)
        account.override_plan = seed_plans()["team"]
        account.override_reason = "design partner"
        account.stripe_customer_id = "cus_adminpages"
        account.save()

    return {
        Plan: seed_plans,
        BillingAccount: billing_account,
        BillingStripeEvent: lambda: BillingStripeEvent.objects.create(
            event_id="evt_billing_adminpages",
            type="invoice.paid",
            tenant=tenant,
            created=1,
            outcome="applied",
        ),
        User: lambda: user,
        Group: lambda: Group.objects.create(name="operators"),
        Tenant: lambda: tenant,
        Membership: lambda: Membership.objects.create(tenant=tenant, user=user, role="owner"),
        ApiKey: lambda: api_key_create(tenant=tenant, scopes="*", name="admin-pages"),
        Invitation: lambda: invitation_create(
            tenant=tenant, email="invited@example.com", role="admin", invited_by_id=user.pk
        ),
        Thread: chats,
        Chat: lambda: None,  # made with the thread above
        ModelConfig: lambda: model_config_create(tenant=tenant, name="local", provider="echo"),
        UsageRecord: lambda: usage_record(tenant=tenant, model="echo", input_tokens=1, output_tokens=1),
        MemoryItem: lambda: memory_item_store(tenant=tenant, key="user_preference", value={"theme": "dark"}),
        Resource: lambda: resource_create(tenant=tenant, resource_id="notes/hello", title="Hello"),
        Tool: lambda: Tool.objects.create(
            tenant=tenant, slug="weather", webhook_url="https://tools.example.com/weather"
        ),
        ToolJob: tool_job,
        PaymentSettings: lambda: PaymentSettings.objects.create(tenant=tenant),
        StripeEvent: stripe_event,
        Payment: lambda: None,  # made with the Stripe event above
        Agent: lambda: agent_create(
            tenant=tenant, agent_id="support", fields={"tools": ["calculator"], "model": "echo"}
        ),
    }


def _url(model: type[models.Model], view: str, *args: Any) -> str:
    meta = model._meta
    return f"/admin/{meta.app_label}/{meta.model_name}/" + "".join(f"{arg}/" for arg in args) + view


@pytest.fixture
def registered(operator: tuple[Client, User], alice: Tenant, alice_client: Any) -> list[type[models.Model]]:
    """Every model the admin registers, each with at least one row."""
    makers = _rows(alice, operator[1], alice_client)
    models_ = list(admin.site._registry)
    missing = [model.__name__ for model in models_ if model not in makers]
    assert not missing, f"add a row maker for {missing} so its admin pages are opened here"
    for model in models_:
        makers[model]()
    return models_


def _first_row(model: type[models.Model]) -> Any:
    manager: Any = model._default_manager
    row = (manager.unscoped() if hasattr(manager, "unscoped") else manager).first()
    assert row is not None, f"no {model.__name__} row to open"
    return row


def test_every_registered_admin_opens(
    operator: tuple[Client, User], registered: list[type[models.Model]]
) -> None:
    client = operator[0]
    problems: list[str] = []
    for model in registered:
        row = _first_row(model)
        expected_add = 403 if model in NO_ADD else 200
        checks = [
            (_url(model, ""), 200),
            (_url(model, "add/"), expected_add),
            (_url(model, "change/", row.pk), 200),
            (_url(model, "delete/", row.pk), 403 if model in NO_DELETE else 200),
            (_url(model, "history/", row.pk), 200),
        ]
        for url, expected in checks:
            status = client.get(url).status_code
            if status != expected:
                problems.append(f"{url}: {status}, expected {expected}")
        change = client.get(_url(model, "change/", row.pk))
        view_only = model in VIEW_ONLY
        if change.status_code == 200 and change.context["has_change_permission"] == view_only:
            problems.append(f"{model.__name__}: change page {'editable' if view_only else 'read-only'}")
    assert not problems, "\n".join(problems)


def _inline_management_data(page: Any) -> dict[str, Any]:
    """What the browser posts back for the page's inlines (their management forms and row ids)."""
    data: dict[str, Any] = {}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({formset.management_form.add_prefix(name): value
                     for name, value in formset.management_form.initial.items()})  # fmt: skip
        for row in formset.initial_forms:
            data[row.add_prefix(formset.model._meta.pk.name)] = row.instance.pk
    return data


def _bound_form_data(form: Any) -> dict[str, Any]:
    """A form's current values as a browser would post them (readonly fields are not in it)."""
    data: dict[str, Any] = {}
    for bound in form:
        widget, value = bound.field.widget, bound.value()
        if isinstance(widget, forms.MultiWidget):
            parts = widget.decompress(value)
            for suffix, part in zip(widget.widgets_names, parts, strict=True):
                data[bound.html_name + suffix] = "" if part is None else str(part)
        elif isinstance(widget, forms.CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(item) for item in value]
        else:
            data[bound.html_name] = "" if value is None else str(value)
    return data


def _form_data(page: Any) -> dict[str, Any]:
    """What a browser posts back from an admin change page left as it is, inlines included."""
    data = _inline_management_data(page)
    data.update(_bound_form_data(page.context["adminform"].form))
    for inline in page.context["inline_admin_formsets"]:
        for row in inline.formset.initial_forms:
            data.update(_bound_form_data(row))
    return data


def test_every_change_form_saves_unchanged(
    operator: tuple[Client, User], registered: list[type[models.Model]]
) -> None:
    client = operator[0]
    problems = []
    for model in registered:
        if model in VIEW_ONLY:
            continue
        row = _first_row(model)
        url = _url(model, "change/", row.pk)
        response = client.post(url, _form_data(client.get(url)))
        if response.status_code != 302:
            errors = response.context["adminform"].form.errors if response.context else response.content[:300]
            problems.append(f"{url}: {response.status_code} {errors}")
    assert not problems, "\n".join(problems)


def test_a_chat_page_shows_its_messages_and_a_thread_keeps_its_tenant(
    operator: tuple[Client, User], alice: Tenant, alice_client
) -> None:
    client, _ = operator
    assert (
        alice_client.post(
            "/chat",
            {"thread_id": "thread_ops", "messages": [{"content": "where is my order"}]},
            format="json",
        ).status_code
        == 200
    )
    thread = Thread.objects.for_tenant(alice).get(thread_id="thread_ops")
    chat = Chat.objects.for_tenant(alice).get(thread=thread)
    page = client.get(_url(Chat, "change/", chat.pk)).content.decode()
    assert "where is my order" in page  # the exchange's messages, read-only
    page = client.get(_url(Thread, "change/", thread.pk)).content.decode()
    assert "where is my order" in page

    # An operator may retitle a thread; its id and tenant stay as they are.
    form = _inline_management_data(client.get(_url(Thread, "change/", thread.pk)))
    form.update({"title": "Order question", "thread_id": "thread_other", "tenant": "999"})
    response = client.post(_url(Thread, "change/", thread.pk), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    thread.refresh_from_db()
    assert (thread.title, thread.thread_id, thread.tenant_id) == ("Order question", "thread_ops", alice.pk)
    assert Message.objects.for_tenant(alice).filter(thread=thread).count() == 2
    # Adding a chat or a thread by hand is off: they are records of exchanges through /chat.
    assert client.post(_url(Chat, "add/"), {"tenant": alice.pk, "chat_id": "chat_x"}).status_code == 403
    assert client.post(_url(Thread, "add/"), {"tenant": alice.pk, "thread_id": "thread_x"}).status_code == 403
    assert Chat.objects.for_tenant(alice).count() == 1


def test_relation_choices_span_tenants_but_a_row_cannot_point_into_another(
    operator: tuple[Client, User], alice: Tenant, charlie: Tenant, rf: Any
) -> None:
    alice_thread = Thread.objects.create(tenant=alice, thread_id="thread_a")
    charlie_thread = Thread.objects.create(tenant=charlie, thread_id="thread_c")
    request = rf.get("/admin/")
    request.user = operator[1]
    form_class = OperatorAdmin(Chat, admin.site).get_form(
        request, fields=["tenant", "chat_id", "thread", "model"]
    )

    def form(thread: Thread) -> Any:
        return form_class({"tenant": alice.pk, "chat_id": "chat_1", "thread": thread.pk, "model": "echo"})

    assert {choice.thread_id for choice in form(alice_thread).fields["thread"].queryset} == {
        "thread_a",
        "thread_c",
    }
    refused = form(charlie_thread)
    assert not refused.is_valid()
    assert "thread thread_c belongs to another tenant" in str(refused.errors)
    assert form(alice_thread).is_valid(), form(alice_thread).errors


@pytest.mark.parametrize(
    ("host", "secure", "secure_cookies", "warned"),
    [
        ("10.0.0.5:8000", False, True, True),  # plain HTTP on a LAN address: the browser drops the cookies
        ("localhost:8000", False, True, False),  # browsers keep Secure cookies on http://localhost
        ("10.0.0.5:8000", True, True, False),
        ("10.0.0.5:8000", False, False, False),
    ],
)
def test_the_login_page_says_when_secure_cookies_cannot_work(
    settings: Any, host: str, secure: bool, secure_cookies: bool, warned: bool
) -> None:
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = secure_cookies
    page = Client().get("/admin/login/", HTTP_HOST=host, secure=secure)
    assert page.status_code == 200
    assert ("SLOP_SECURE_COOKIES=false" in page.content.decode()) is warned
