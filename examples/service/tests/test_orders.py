from shop import orders

ITEMS = [
    {"sku": "MUG-01", "unit_price": 12.5, "quantity": 2},
    {"sku": "TEE-M", "unit_price": 21.0, "quantity": 1},
]


def test_order_total_sums_its_lines():
    assert orders.order_total({"items": ITEMS}) == 46.0


def test_unit_count_counts_quantities_not_lines():
    assert orders.unit_count({"items": ITEMS}) == 3


def test_average_item_price_is_per_unit():
    assert orders.average_item_price(ITEMS) == 15.33


def test_shipping_country_is_upper_cased():
    assert orders.shipping_country({"shipping": {"country": "gb"}}) == "GB"
