from shop import billing


def test_coupon_code_is_trimmed_and_upper_cased():
    assert billing.coupon_code({"id": "c-1", "coupon": "  summer10 "}) == "SUMMER10"


def test_known_coupon_gives_its_discount():
    assert billing.discount_rate("STAFF25") == 0.25


def test_empty_or_unknown_coupon_gives_no_discount():
    assert billing.discount_rate("") == 0.0
    assert billing.discount_rate("FREESTUFF") == 0.0


def test_invoice_charges_vat_on_the_discounted_amount():
    items = [{"sku": "MUG-01", "unit_price": 12.5, "quantity": 2}]
    assert billing.invoice(items, 0.10) == {"subtotal": 25.0, "discount": 2.5, "vat": 4.5, "total": 27.0}


def test_invoice_without_discount():
    items = [{"sku": "CAP-01", "unit_price": 15.0, "quantity": 1}]
    assert billing.invoice(items, 0.0)["total"] == 18.0
