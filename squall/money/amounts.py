"""Money: a ``Decimal`` amount with its currency (an ISO 4217 code, or ``credits``), never a float.

Amounts keep full precision while they are computed and are rounded once, to the
currency's smallest unit, when they are shown, held or settled. Free (the local
site) is zero in any currency; adding two different currencies is an error,
never a silent conversion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CURRENCY = re.compile(r"^([A-Z]{3}|credits)$")
CENT = Decimal("0.01")
ANY = "any"  # the currency of zero: free is free in every currency


def decimal(value: object, field: str = "amount") -> Decimal:
    """A Decimal from a config value: YAML floats go through their text (0.1 stays 0.1)."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: {value!r} is not a number")
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{field}: {value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not a finite number")
    return result


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def zero(cls, currency: str = ANY) -> "Money":
        return cls(Decimal(0), currency)

    @classmethod
    def parse(cls, text: str) -> "Money":
        """``"12.50 EUR"`` → Money; ``"0"`` is free."""
        parts = text.split()
        if len(parts) == 1 and decimal(parts[0]) == 0:
            return cls.zero()
        if len(parts) != 2 or not CURRENCY.fullmatch(parts[1]):
            raise ValueError(f"{text!r} is not an amount with its currency (such as '12.50 EUR' or '30 credits')")
        return cls(decimal(parts[0]), parts[1])

    def _common(self, other: "Money") -> str:
        if other.currency in (ANY, self.currency):
            return self.currency
        if self.currency == ANY:
            return other.currency
        raise ValueError(f"cannot add {self} and {other}: different currencies")

    def __add__(self, other: "Money") -> "Money":
        return Money(self.amount + other.amount, self._common(other))

    def __sub__(self, other: "Money") -> "Money":
        return Money(self.amount - other.amount, self._common(other))

    def __mul__(self, factor: Decimal | int) -> "Money":
        return Money(self.amount * Decimal(factor), self.currency)

    def __lt__(self, other: "Money") -> bool:
        self._common(other)
        return self.amount < other.amount

    def __le__(self, other: "Money") -> bool:
        self._common(other)
        return self.amount <= other.amount

    def rounded(self) -> "Money":
        return Money(self.amount.quantize(CENT, rounding=ROUND_HALF_UP), self.currency)

    def __str__(self) -> str:
        shown = self.rounded()
        return "free" if self.currency == ANY else f"{shown.amount} {self.currency}"

    def to_json(self) -> dict:
        """Amounts in JSON are strings (a float would lose cents)."""
        return {"amount": str(self.rounded().amount), "currency": None if self.currency == ANY else self.currency}
