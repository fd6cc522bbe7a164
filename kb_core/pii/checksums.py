"""Check digits of Russian identifiers and payment numbers.

Validating the check digit turns "any 10 digits" into "an INN": it is what keeps ticket
numbers, prices and dates from being scrubbed as personal data.
"""

from __future__ import annotations

_INN10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_A = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_B = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def digits_of(text: str) -> list[int]:
    return [int(c) for c in text if c.isdigit()]


def _weighted(digits: list[int], weights: tuple[int, ...]) -> int:
    return sum(w * d for w, d in zip(weights, digits, strict=False)) % 11 % 10


def inn_valid(text: str) -> bool:
    """Russian taxpayer number: 10 digits (organisation) or 12 (person)."""
    d = digits_of(text)
    if not any(d):  # an all-zero input mask passes the arithmetic but is no number
        return False
    if len(d) == 10:
        return _weighted(d, _INN10) == d[9]
    if len(d) == 12:
        return _weighted(d, _INN12_A) == d[10] and _weighted(d, _INN12_B) == d[11]
    return False


def snils_valid(text: str) -> bool:
    """Russian pension insurance number: 9 digits and a 2-digit check number."""
    d = digits_of(text)
    if len(d) != 11 or not any(d):  # «000-000-000 00» is the form's input mask
        return False
    total = sum(digit * weight for digit, weight in zip(d[:9], range(9, 0, -1), strict=True))
    while total > 101:
        total %= 101
    check = 0 if total in (100, 101) else total
    return check == d[9] * 10 + d[10]


def luhn_valid(text: str) -> bool:
    """Payment card numbers (12–19 digits) carry a Luhn check digit."""
    d = digits_of(text)
    if not 12 <= len(d) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(d)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0
