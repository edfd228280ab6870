"""The scope matcher against every example of the seeds and PROTOCOL.md, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.tenants.scopes import (
    AREAS,
    Action,
    EffectiveScopes,
    ScopeError,
    parse_scope,
    parse_scopes,
)

A = Action

# (granted scopes, action, allowed)
CASES: list[tuple[str, Action, bool]] = [
    # The seed's common scopes.
    ("chat.read", A("chat", "read"), True),
    ("chat.read", A("chat", "read", "thread_12345"), True),
    ("chat.read", A("chat", "write"), False),
    ("chat.write", A("chat", "write", "thread_12345"), True),
    ("tools.*", A("tools", "execute", "calculator"), True),
    ("tools.*", A("tools", "list"), True),
    ("tools.safe.*", A("tools", "execute", "calculator", safe_tool=True), True),
    ("tools.safe.*", A("tools", "execute", "system-cmd", safe_tool=False), False),
    ("tools.safe.*", A("tools", "read", "calculator", safe_tool=True), True),
    ("tools.safe.*", A("tools", "write", "calculator", safe_tool=True), False),
    ("memory.user.*", A("memory", "read", "user_preference"), True),
    ("memory.user.*", A("memory", "write", "user/prefs"), True),
    ("memory.user.*", A("memory", "read", "thread:thread_12345"), False),
    ("memory..read", A("memory", "read", "anything"), True),
    ("memory..read", A("memory", "write", "anything"), False),
    # The seed's header example: chat.read,tools.calculator,memory.user.read
    ("chat.read,tools.calculator,memory.user.read", A("tools", "execute", "calculator"), True),
    ("chat.read,tools.calculator,memory.user.read", A("tools", "execute", "calculator2"), False),
    ("chat.read,tools.calculator,memory.user.read", A("memory", "read", "user_preference"), True),
    ("chat.read,tools.calculator,memory.user.read", A("memory", "write", "user_preference"), False),
    # Safe: calculator within scope; blocked: no execute permission on system-cmd.
    ("tools.calculator.execute", A("tools", "execute", "calculator"), True),
    ("tools.calculator.execute", A("tools", "execute", "system-cmd"), False),
    ("tools.calculator.execute", A("tools", "execute", "execute-code"), False),
    # PROTOCOL.md §3.
    ("*", A("pay", "execute"), True),
    ("*", A("memory", "write", "x"), True),
    ("memory.*", A("memory", "list"), True),
    ("memory.*", A("tools", "list"), False),
    ("memory.read", A("memory", "read", "k"), True),
    ("memory.user.prefs.read", A("memory", "read", "user.prefs.theme"), True),
    ("memory.user.prefs.read", A("memory", "read", "user.other"), False),
    ("tools.calculator.*", A("tools", "read", "calculator"), True),
    ("tools.calculator.*", A("tools", "execute", "calculator"), True),
    ("tools.calculator.read", A("tools", "execute", "calculator"), False),
    ("tools.safe.calculator", A("tools", "execute", "calculator", safe_tool=True), True),
    ("tools.safe.calculator", A("tools", "execute", "current_time", safe_tool=True), False),
    ("tools.safe.calculator", A("tools", "execute", "calculator", safe_tool=False), False),
    ("tools.safe.execute", A("tools", "execute", "safe"), True),
    ("tools.safe.execute", A("tools", "execute", "calculator", safe_tool=True), False),
    ("tools.calc.execute", A("tools", "execute", "calculator"), False),  # tools match exactly
    ("chat.thread_1.write", A("chat", "write", "thread_12"), False),  # threads match exactly
    ("chat.thread_1.write", A("chat", "write", "thread_1"), True),
    ("chat.thread_1.write", A("chat", "write"), False),
    ("resources.notes.read", A("resources", "read", "notes/hello"), True),
    ("resources.notes/.read", A("resources", "read", "notesx"), False),
    ("resources.read", A("resources", "read", "mars-101"), True),
    ("pay.execute", A("pay", "execute"), True),
    ("pay.read", A("pay", "execute"), False),
]


@pytest.mark.parametrize(("granted", "action", "allowed"), CASES, ids=[f"{g}->{a}" for g, a, _ in CASES])
def test_scope_table(granted: str, action: Action, allowed: bool) -> None:
    assert parse_scopes(granted).allows(action) is allowed


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "chats.read",
        "memory",
        "memory.user.delete",
        "tools.*.execute",
        "mem ory.read",
        "memory.read,",
        "chat.",
    ],
)
def test_malformed_scopes_are_refused_and_named(bad: str) -> None:
    with pytest.raises(ScopeError) as raised:
        parse_scopes(bad) if bad != "memory.read," else parse_scope("")
    assert "Invalid scope" in str(raised.value)


def test_header_narrows_but_never_widens() -> None:
    effective = EffectiveScopes(granted=parse_scopes("memory.user.*"), requested=parse_scopes("*"))
    assert effective.allows(A("memory", "read", "user_a"))
    assert not effective.allows(A("memory", "read", "thread:1"))
    assert not effective.allows(A("tools", "execute", "calculator"))
    narrowed = EffectiveScopes(granted=parse_scopes("*"), requested=parse_scopes("memory.user.read"))
    assert narrowed.allows(A("memory", "read", "user_a"))
    assert not narrowed.allows(A("memory", "write", "user_a"))


def test_prefixes_intersect_key_and_header() -> None:
    effective = EffectiveScopes(
        granted=parse_scopes("memory.user.*,memory.thread:.read"),
        requested=parse_scopes("memory.user/prefs.read,memory.thread:.*"),
    )
    assert effective.prefixes("memory", "read") == ["thread:", "user/prefs"]
    assert EffectiveScopes(granted=parse_scopes("*")).prefixes("memory", "read") is None
    assert EffectiveScopes(granted=parse_scopes("chat.*")).prefixes("memory", "read") == []
    exact = EffectiveScopes(
        granted=parse_scopes("chat.thread_a.read"), requested=parse_scopes("chat.thread_ab.read")
    )
    assert exact.prefixes("chat", "read") == []


# --- properties -------------------------------------------------------------------------------
areas = st.sampled_from(sorted(AREAS))
permissions = st.sampled_from(["read", "write", "execute", "list"])
identifiers = st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9_:/-]{0,12}", fullmatch=True))
actions = st.builds(
    Action, area=areas, permission=permissions, identifier=identifiers, safe_tool=st.booleans()
)


@st.composite
def scope_strings(draw: st.DrawFn) -> str:
    area = draw(areas)
    permission = draw(st.sampled_from(["read", "write", "execute", "list", "*"]))
    identifier = draw(identifiers)
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return "*"
    if choice == 1 and area == "tools":
        return "tools.safe." + (identifier or "*")
    return f"{area}.{identifier}.{permission}" if identifier else f"{area}.{permission}"


scope_lists = st.lists(scope_strings(), min_size=1, max_size=5).map(",".join)


@given(granted=scope_lists, header=scope_lists, action=actions)
def test_property_header_never_widens(granted: str, header: str, action: Action) -> None:
    effective = EffectiveScopes(granted=parse_scopes(granted), requested=parse_scopes(header))
    if effective.allows(action):
        assert parse_scopes(granted).allows(action)
        assert parse_scopes(header).allows(action)


@given(action=actions)
def test_property_area_star_covers_its_area_only(action: Action) -> None:
    for area in AREAS:
        assert parse_scopes(f"{area}.*").allows(action) is (action.area == area)


@given(action=actions)
def test_property_star_covers_everything(action: Action) -> None:
    assert parse_scopes("*").allows(action)


@given(scope=scope_strings())
def test_property_scopes_round_trip(scope: str) -> None:
    parsed = parse_scopes(scope)
    assert parse_scopes(",".join(parsed.strings())) == parsed


@given(granted=scope_lists, header=scope_lists, key=st.from_regex(r"[a-z][a-z0-9_:/-]{0,12}", fullmatch=True))
def test_property_prefix_lists_agree_with_allows(granted: str, header: str, key: str) -> None:
    effective = EffectiveScopes(granted=parse_scopes(granted), requested=parse_scopes(header))
    prefixes = effective.prefixes("memory", "read")
    by_prefix = prefixes is None or any(key.startswith(prefix) for prefix in prefixes)
    assert by_prefix is effective.allows(A("memory", "read", key))


@given(area=areas, identifier=st.from_regex(r"[a-z][a-z0-9_:/-]{0,12}", fullmatch=True))
def test_property_empty_identifier_equals_two_segments(area: str, identifier: str) -> None:
    for permission in ("read", "write", "execute", "list"):
        action = A(area, permission, identifier)
        assert parse_scopes(f"{area}..{permission}").allows(action) == parse_scopes(
            f"{area}.{permission}"
        ).allows(action)
