from shop import api, jobs


def test_checkout_applies_the_customer_coupon():
    request = {"body": {"customer": {"id": "c-101", "coupon": "summer10"},
                        "items": [{"sku": "MUG-01", "unit_price": 12.5, "quantity": 2}]}}
    response = api.checkout(request)
    assert response["status"] == 200
    assert response["body"]["coupon"] == "SUMMER10"
    assert response["body"]["total"] == 27.0


def test_order_summary_of_a_shipped_order():
    response = api.get_order_summary({"params": {"order_id": "o-1001"}})
    assert response["status"] == 200
    assert response["body"]["units"] == 3
    assert response["body"]["total"] == 46.0
    assert response["body"]["ships_to"] == "GB"


def test_order_summary_of_an_unknown_order_is_not_found():
    assert api.get_order_summary({"params": {"order_id": "o-9999"}})["status"] == 404


def test_profile_card_uses_the_full_name_when_the_nickname_is_blank():
    response = api.get_profile({"params": {"user_id": "u-2"}})
    assert response["body"]["display_name"] == "Grace Hopper"
    assert response["body"]["initials"] == "GH"


def test_profile_of_an_unknown_user_is_not_found():
    assert api.get_profile({"params": {"user_id": "u-404"}})["status"] == 404


def test_weekly_digest_greets_each_user_by_display_name():
    assert jobs.run_weekly_digest(["u-1", "u-2"]) == [
        "Hi ada, here is your week at the shop.",
        "Hi Grace Hopper, here is your week at the shop.",
    ]
