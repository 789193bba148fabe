"""In-memory records standing in for the shop's database, shaped as the JSON the API stores."""

from __future__ import annotations

from typing import Any

ORDERS: dict[str, dict[str, Any]] = {
    "o-1001": {
        "id": "o-1001",
        "status": "paid",
        "items": [
            {"sku": "MUG-01", "name": "Enamel mug", "unit_price": 12.5, "quantity": 2},
            {"sku": "TEE-M", "name": "T-shirt (M)", "unit_price": 21.0, "quantity": 1},
        ],
        "shipping": {"name": "Ada Lovelace", "city": "London", "country": "gb"},
    },
    "o-1002": {
        "id": "o-1002",
        "status": "paid",
        "items": [{"sku": "CAP-01", "name": "Cap", "unit_price": 15.0, "quantity": 3}],
        "shipping": {"name": "Grace Hopper", "city": "Arlington", "country": "us"},
    },
    # A draft whose last line the customer removed: the cart is empty but the order still exists.
    "o-1003": {
        "id": "o-1003",
        "status": "draft",
        "items": [],
        "shipping": {"name": "Alan Turing", "city": "Wilmslow", "country": "gb"},
    },
    # Gift cards are delivered by email, so the checkout stores no shipping address at all.
    "o-1004": {
        "id": "o-1004",
        "status": "paid",
        "items": [{"sku": "GIFT-50", "name": "Gift card", "unit_price": 50.0, "quantity": 1}],
        "shipping": None,
    },
}

PROFILES: dict[str, dict[str, Any]] = {
    "u-1": {"id": "u-1", "first_name": "Ada", "last_name": "Lovelace", "nickname": "ada",
            "email": "ada@example.com", "joined": "2021-03-14"},
    "u-2": {"id": "u-2", "first_name": "Grace", "last_name": "Hopper", "nickname": "",
            "email": "grace@example.com", "joined": "2022-07-01"},
    # Imported from the old shop, whose accounts had no nickname field.
    "u-3": {"id": "u-3", "first_name": "Alan", "last_name": "Turing",
            "email": "alan@example.com", "joined": "2019-11-02"},
}
