"""The tool-calling loop: only tools the effective scope may execute are offered or run."""

from __future__ import annotations

from typing import Any

import pytest

from apps.chat.models import Message

pytestmark = pytest.mark.django_db

CALC = '/tool calculator {"expression": "2+2"}'


def say(client: Any, content: str, **extra: Any) -> Any:
    return client.post("/chat", {"messages": [{"content": content}], **extra}, format="json")


@pytest.fixture
def fake_gpt(alice: Any, openai_upstream: Any) -> Any:
    from apps.llm.services import model_config_create

    model_config_create(
        tenant=alice,
        name="fake",
        provider="openai",
        base_url=openai_upstream.url,
        api_key=openai_upstream.api_key,
    )
    return openai_upstream


def test_echo_runs_the_calculator_within_scope_and_stores_the_call(client_for: Any, alice: Any) -> None:
    client = client_for(alice, "chat.write,chat.read,tools.calculator.execute")
    body = say(client, CALC).json()
    assert body["tool_calls"] == [
        {
            "id": body["tool_calls"][0]["id"],
            "tool": "calculator",
            "arguments": {"expression": "2+2"},
            "result": 4,
        }
    ]
    assert body["message"]["content"] == 'calculator returned: {"result": 4}'
    stored = Message.objects.for_tenant(alice).get(role="assistant")
    assert stored.tool_calls[0]["result"] == 4


def test_a_tool_outside_the_scope_is_refused_not_run(client_for: Any, alice: Any) -> None:
    client = client_for(alice, "*", scope_header="chat.write,tools.current_time.execute")
    body = say(client, CALC).json()
    call = body["tool_calls"][0]
    assert call["error"]["code"] == "scope_violation"
    assert call["error"]["required_scope"] == "tools.calculator.execute"
    assert call["error"]["permitted"] is False
    assert "result" not in call


def test_safe_tools_scope_covers_the_safe_calculator(client_for: Any, alice: Any) -> None:
    client = client_for(alice, "chat.write,tools.safe.*")
    assert say(client, CALC).json()["tool_calls"][0]["result"] == 4


def test_bad_tool_arguments_come_back_to_the_model_as_an_error(alice_client: Any) -> None:
    body = say(alice_client, '/tool calculator {"expression": 5}').json()
    assert body["tool_calls"][0]["error"]["status"] == 400


def test_openai_model_is_offered_only_executable_tools(client_for: Any, alice: Any, fake_gpt: Any) -> None:
    client = client_for(alice, "chat.write,tools.calculator.execute")
    body = say(client, "use calculator 6*7", model="fake").json()
    assert body["tool_calls"][0]["result"] == 42
    assert body["message"]["content"] == 'The tool said {"result": 42}'
    offered = [t["function"]["name"] for t in fake_gpt.requests[-2]["tools"]]
    assert offered == ["calculator"]
    none = client_for(alice, "chat.write")
    say(none, "hello", model="fake")
    assert "tools" not in fake_gpt.requests[-1]


def test_tools_none_offers_nothing(alice_client: Any, fake_gpt: Any) -> None:
    body = say(alice_client, "use calculator 1+1", model="fake", tools="none").json()
    # the model asked anyway: refused as outside what it was offered
    assert body["tool_calls"][0]["error"]["code"] == "scope_violation"
    assert "tools" not in fake_gpt.requests[-2]


def test_the_loop_stops_at_the_iteration_cap(alice_client: Any, fake_gpt: Any, settings: Any) -> None:
    settings.SLOP_CHAT_MAX_TOOL_ITERATIONS = 2
    body = say(alice_client, "always tool", model="fake").json()
    assert [c.get("result") for c in body["tool_calls"]] == [2, 2]
    # the last round forbids tool calls, so the model must answer
    assert fake_gpt.requests[-1]["tool_choice"] == "none" and fake_gpt.requests[-1]["tools"]
    assert body["message"]["status"] == "complete"


@pytest.mark.django_db(transaction=True)
def test_a_long_running_tools_job_is_awaited(alice_client: Any) -> None:
    assert alice_client.put("/tools/calculator", {"long_running": True}, format="json").status_code == 200
    body = say(alice_client, '/tool calculator {"expression": "20+22"}').json()
    assert body["tool_calls"][0]["result"] == 42
    assert body["message"]["content"] == 'calculator returned: {"result": 42}'


def test_job_answers_become_results_errors_or_a_pointer() -> None:
    from apps.chat.toolbox import _outcome

    assert _outcome({"result": 1}).result == 1
    assert _outcome({"job_id": "job_1", "status": "succeeded", "result": 2}).result == 2
    failed = _outcome({"job_id": "job_1", "status": "failed", "error": "boom"})
    assert failed.error == {"error": "boom", "code": "tool_failed", "job_id": "job_1"}
    running = _outcome({"job_id": "job_1", "status": "running", "status_url": "/tools/jobs/job_1"})
    assert running.result["status_url"] == "/tools/jobs/job_1" and running.error is None


def test_a_tool_switched_off_is_not_offered_to_the_next_chat(alice_client: Any, fake_gpt: Any) -> None:
    say(alice_client, "hello", model="fake")  # the tenant's tools are now in this process's snapshot
    assert "calculator" in [t["function"]["name"] for t in fake_gpt.requests[-1]["tools"]]
    assert alice_client.put("/tools/calculator", {"enabled": False}, format="json").status_code == 200
    say(alice_client, "hello", model="fake")
    assert "calculator" not in [t["function"]["name"] for t in fake_gpt.requests[-1]["tools"]]


def test_a_tool_switched_off_by_another_process_is_refused_when_called(alice_client: Any, alice: Any) -> None:
    """Another process's change reaches this one's snapshot within SLOP_TENANT_CONFIG_CACHE_SECONDS;
    until then the model may still be offered the tool, but running it checks the table."""
    from apps.tools.models import Tool

    assert say(alice_client, CALC).json()["tool_calls"][0]["result"] == 4
    alice_client.put("/tools/calculator", {"enabled": True}, format="json")
    say(alice_client, "hello")  # snapshot taken with the tool enabled
    Tool.objects.for_tenant(alice).filter(slug="calculator").update(enabled=False)  # no signal
    call = say(alice_client, CALC).json()["tool_calls"][0]
    assert "result" not in call
    assert call["error"]["code"] == "tool_disabled"
