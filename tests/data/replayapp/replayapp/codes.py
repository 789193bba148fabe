"""Currency codes: a strict lookup, and the check an order makes with it."""

CODES = {"eur": "EUR", "usd": "USD", "gbp": "GBP"}


def currency(code: str) -> str:
    key = code.strip().lower()
    if key not in CODES:
        raise ValueError(f"unknown currency {code!r}")
    return CODES[key]


def same_currency(a: str, b: str) -> bool:
    return currency(a) == currency(b)
