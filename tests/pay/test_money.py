"""Exact money: property tests over every currency the platform knows (no float anywhere)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.pay.money import (
    CURRENCIES,
    STRIPE_MAX_MINOR,
    MoneyError,
    currency_for,
    from_minor_units,
    parse_amount,
    to_minor_units,
)

currencies = st.sampled_from(sorted(CURRENCIES.values(), key=lambda c: c.code))


@settings(max_examples=300, deadline=None)
@given(currency=currencies, units=st.integers(min_value=1, max_value=STRIPE_MAX_MINOR))
def test_minor_units_round_trip_exactly(currency, units):
    units -= units % (currency.minor_step * 10 ** (currency.stripe_exponent - currency.decimals))
    if units == 0:
        return
    amount = from_minor_units(units, currency)
    assert isinstance(amount, Decimal)
    assert to_minor_units(amount, currency) == units
    # The string a client would send parses back to the same money.
    assert to_minor_units(parse_amount(str(amount)), currency) == units


@settings(max_examples=300, deadline=None)
@given(currency=currencies, whole=st.integers(min_value=1, max_value=10**6), extra=st.integers(1, 9))
def test_more_decimals_than_the_currency_has_is_refused(currency, whole, extra):
    too_precise = Decimal(whole) + Decimal(extra).scaleb(-(currency.decimals + 1))
    with pytest.raises(MoneyError) as caught:
        to_minor_units(too_precise, currency)
    assert caught.value.field == "amount"


@settings(max_examples=200, deadline=None)
@given(
    currency=currencies,
    amount=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**7), places=3, allow_nan=False),
)
def test_conversion_is_exact_or_refused(currency, amount):
    try:
        units = to_minor_units(amount, currency)
    except MoneyError:
        return
    assert Decimal(units) == amount.scaleb(currency.stripe_exponent)
    assert units % currency.minor_step == 0


@pytest.mark.parametrize(
    ("amount", "code", "units"),
    [
        ("5.00", "USD", 500),
        ("5", "USD", 500),
        ("0.10", "EUR", 10),
        ("500", "JPY", 500),
        ("1000", "KRW", 1000),
        ("5.120", "KWD", 5120),
        ("5.12", "BHD", 5120),
        ("100", "ISK", 10000),
        ("19.99", "usd", 1999),
    ],
)
def test_known_conversions(amount, code, units):
    assert to_minor_units(parse_amount(amount), currency_for(code)) == units


@pytest.mark.parametrize(
    ("amount", "code"),
    [("5.5", "JPY"), ("0.001", "USD"), ("5.125", "KWD"), ("1.5", "ISK"), ("5.1234", "OMR")],
)
def test_amounts_a_currency_cannot_carry_are_refused(amount, code):
    with pytest.raises(MoneyError):
        to_minor_units(parse_amount(amount), currency_for(code))


@pytest.mark.parametrize(
    "raw",
    [
        0,
        -1,
        "0",
        "-5.00",
        "NaN",
        "Infinity",
        "abc",
        "",
        True,
        None,
        1.5,
        [],
        "1e30",
        "1_000",
        "5,00",
        " ",
        "5.00.0",
    ],
)
def test_bad_amounts(raw):
    with pytest.raises(MoneyError):
        parse_amount(raw)


@pytest.mark.parametrize("code", ["XYZ", "US", "", None, 5, "BTC"])
def test_unknown_currencies(code):
    with pytest.raises(MoneyError):
        currency_for(code)


def test_zero_and_three_decimal_tables():
    assert CURRENCIES["JPY"].decimals == 0 and CURRENCIES["KRW"].stripe_exponent == 0
    assert CURRENCIES["KWD"].decimals == 3 and CURRENCIES["KWD"].minor_step == 10
    assert from_minor_units(500, CURRENCIES["USD"]) == Decimal("5.00")
    assert str(from_minor_units(500, CURRENCIES["USD"])) == "5.00"
    assert str(from_minor_units(500, CURRENCIES["JPY"])) == "500"
