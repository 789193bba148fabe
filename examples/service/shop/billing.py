"""Money at checkout: coupon codes, discounts and the invoice amounts."""

from __future__ import annotations

from typing import Any

COUPONS: dict[str, float] = {"SUMMER10": 0.10, "WELCOME5": 0.05, "STAFF25": 0.25}
VAT_RATE = 0.20


def coupon_code(customer: dict[str, Any]) -> str:
    """The coupon the customer typed at checkout, normalised for lookup (" summer10 " -> "SUMMER10")."""
    return customer.get("coupon").strip().upper()


def discount_rate(code: str) -> float:
    """The fraction taken off for a coupon code; an empty or unknown code takes nothing off."""
    return COUPONS.get(code, 0.0)


def subtotal(items: list[dict[str, Any]]) -> float:
    return round(sum(item["unit_price"] * item["quantity"] for item in items), 2)


def invoice(items: list[dict[str, Any]], discount: float) -> dict[str, float]:
    """Subtotal, discount, VAT and total; VAT is charged on the discounted amount."""
    gross = subtotal(items)
    off = round(gross * discount, 2)
    vat = round((gross - off) * VAT_RATE, 2)
    return {"subtotal": gross, "discount": off, "vat": vat, "total": round(gross - off + vat, 2)}
