"""The calculator: right answers, and hostile expressions refused quickly with a 400."""

from __future__ import annotations

import time

import pytest

from apps.tools.calculator import CalculatorError, evaluate

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("15 * 7", 105),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("10 / 4", 2.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("-3 ** 2", -9),
        ("(-2) ** 3", -8),
        ("+5 - -5", 10),
        ("2 ** -1", 0.5),
        ("1.5e3 + 0.5", 1500.5),
        ("3 \u00d7 4 \u00f7 2 \u2212 1", 5.0),
        ("2 ** 4095 // 2 ** 4094", 2),
        ("1" + "+1" * 150, 151),
    ],
)
def test_arithmetic(expression: str, expected: float) -> None:
    assert evaluate(expression) == expected


HOSTILE = [
    "9**9**9",
    "4000000**4000000",
    "(" * 10000 + "1" + ")" * 10000,
    "(" * 60 + "1" + ")" * 60,
    "-" * 999 + "1",
    "1" + "+1" * 499,
    "__import__('os')",
    "__import__('os').system('id')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "open('/etc/passwd')",
    "lambda: 1",
    "[1] * 10",
    "'a' * 3",
    "True + 1",
    "1 if 1 else 2",
    "1 < 2",
    "1 << 100000",
    "x + 1",
    "1j * 1j",
    "10**1000 * 10**1000 * 10**1000",
    "1e308 * 10",
    "1 / 0",
    "1 % 0",
    "0 ** -1",
    "(-8) ** 0.5",
    "",
    "1 +",
    "1" * 1001,
]


@pytest.mark.parametrize("expression", HOSTILE)
def test_hostile_expressions_are_refused_fast(expression: str) -> None:
    timings = []
    for _ in range(3):  # the best of three: the machine is shared, a refusal must never be slow
        started = time.perf_counter()
        with pytest.raises(CalculatorError):
            evaluate(expression)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.01


@pytest.mark.parametrize(
    "expression",
    ["9**9**9", "4000000**4000000", "(" * 10000 + "1" + ")" * 10000, "__import__('os')", "().__class__"],
)
def test_endpoint_answers_400_in_well_under_100ms(alice_client, expression: str) -> None:
    alice_client.post("/tools/calculator", {"expression": "1"}, format="json")  # warm up
    timings = []
    for _ in range(3):  # the best of three, on a shared machine
        started = time.perf_counter()
        response = alice_client.post("/tools/calculator", {"expression": expression}, format="json")
        timings.append(time.perf_counter() - started)
    elapsed = min(timings)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "expression" in body["details"]
    assert elapsed < 0.1


def test_a_non_string_expression_is_a_schema_error(alice_client) -> None:
    response = alice_client.post("/tools/calculator", {"expression": 15}, format="json")
    assert response.status_code == 400
    assert response.json()["details"] == {"expression": ["15 is not of type 'string'"]}
