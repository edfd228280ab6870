"""Exact money: Decimal amounts in major units, integer minor units for Stripe, never a float.

The platform knows the ISO 4217 currencies Stripe charges in. Each has the number of decimals a
client may send (its ISO exponent) and the exponent Stripe counts its `amount` in. They differ for
a few currencies, which is where naive `amount * 100` code loses money:
- zero-decimal currencies (JPY, KRW, …): 500 JPY is `amount=500`, not 50000;
- three-decimal currencies (BHD, JOD, KWD, OMR, TND): 5.125 KWD is `amount=5125`, and Stripe only
  accepts multiples of 10 there, so the last decimal must be 0;
- ISK has no decimals in ISO 4217 but Stripe counts it in hundredths (100 ISK is `amount=10000`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# A numeric string as a client would write it: no exponent, separators or spaces inside.
_AMOUNT_TEXT = re.compile(r"^-?[0-9]{1,24}(\.[0-9]{1,24})?$")

# Stripe's largest amount for a single charge: eight digits in minor units.
STRIPE_MAX_MINOR = 99_999_999


@dataclass(frozen=True)
class Currency:
    code: str
    decimals: int  # how many decimals a client may send (ISO 4217 exponent)
    stripe_exponent: int  # amount_minor = amount * 10 ** stripe_exponent
    minor_step: int = 1  # Stripe accepts only multiples of this in minor units

    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimals)


def _codes(text: str) -> list[str]:
    return text.split()


_ZERO_DECIMAL = _codes("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF")
_THREE_DECIMAL = _codes("BHD JOD KWD OMR TND")
_TWO_DECIMAL = _codes(
    "USD AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BWP BYN BZD "
    "CAD CDF CHF CNY COP CRC CVE CZK DKK DOP DZD EGP ETB EUR FJD FKP GBP GEL GIP GMD GTQ GYD HKD "
    "HNL HTG HUF IDR ILS INR JMD KES KGS KHR KYD KZT LAK LBP LKR LRD LSL MAD MDL MKD MMK MNT MOP "
    "MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR "
    "SBD SCR SEK SGD SHP SLE SOS SRD SZL THB TJS TOP TRY TTD TWD TZS UAH UYU UZS WST XCD YER ZAR ZMW"
)

CURRENCIES: dict[str, Currency] = {
    **{code: Currency(code, 2, 2) for code in _TWO_DECIMAL},
    **{code: Currency(code, 0, 0) for code in _ZERO_DECIMAL},
    **{code: Currency(code, 3, 3, minor_step=10) for code in _THREE_DECIMAL},
    "ISK": Currency("ISK", 0, 2),
}


class MoneyError(ValueError):
    """An amount or currency the platform cannot charge; the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def currency_for(code: object) -> Currency:
    if not isinstance(code, str) or not code.strip():
        raise MoneyError("currency", "A three-letter ISO 4217 currency code is required, e.g. USD.")
    currency = CURRENCIES.get(code.strip().upper())
    if currency is None:
        raise MoneyError("currency", f"{code[:10]!r} is not an ISO 4217 currency this platform charges in.")
    return currency


def parse_amount(raw: object) -> Decimal:
    """A JSON number (parsed as Decimal) or a numeric string; never a float or a bool."""
    if isinstance(raw, bool) or raw is None:
        raise MoneyError("amount", "amount is required and must be a number, e.g. 5.00.")
    if isinstance(raw, float):  # the API parses JSON numbers as Decimal; a float here is a bug
        raise MoneyError("amount", "amount must be an exact decimal, not a binary float.")
    if isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, str):
        if not _AMOUNT_TEXT.match(raw.strip()):
            raise MoneyError("amount", f"amount {raw[:32]!r} is not a decimal number such as 5.00.")
        value = Decimal(raw.strip())
    else:
        raise MoneyError("amount", "amount must be a number, e.g. 5.00.")
    if not value.is_finite():
        raise MoneyError("amount", "amount must be a finite number.")
    if value <= 0:
        raise MoneyError("amount", "amount must be greater than zero.")
    if value.adjusted() > 20:  # far beyond any charge; keeps arithmetic below cheap
        raise MoneyError("amount", "amount is far too large.")
    return value


def to_minor_units(amount: Decimal, currency: Currency) -> int:
    """Exact conversion; refuses amounts with more decimals than the currency has."""
    if amount.adjusted() > 20:
        raise MoneyError("amount", "amount is far too large.")
    if amount != amount.quantize(currency.quantum()):
        raise MoneyError(
            "amount",
            f"{currency.code} amounts have at most {currency.decimals} decimal(s); got {amount}.",
        )
    minor = amount.scaleb(currency.stripe_exponent)
    if minor != minor.to_integral_value():  # unreachable when decimals <= stripe_exponent
        raise MoneyError("amount", f"{amount} {currency.code} is not a whole number of minor units.")
    units = int(minor)
    if units % currency.minor_step:
        step = Decimal(currency.minor_step).scaleb(-currency.stripe_exponent)
        raise MoneyError("amount", f"{currency.code} amounts must be a multiple of {step} (Stripe's rule).")
    return units


def from_minor_units(units: int, currency: Currency) -> Decimal:
    """The major-unit amount with exactly the currency's decimals (500 JPY → 500, 5 USD → 5.00)."""
    return Decimal(units).scaleb(-currency.stripe_exponent).quantize(currency.quantum())


def format_amount(amount: Decimal, currency: Currency) -> Decimal:
    return amount.quantize(currency.quantum())
