from shop import users

ADA = {"id": "u-1", "first_name": "Ada", "last_name": "Lovelace", "nickname": "ada"}


def test_display_name_prefers_the_nickname():
    assert users.display_name(ADA) == "ada"


def test_display_name_falls_back_to_the_full_name_when_the_nickname_is_blank():
    assert users.display_name({**ADA, "nickname": ""}) == "Ada Lovelace"


def test_initials_are_upper_case():
    assert users.initials({"first_name": "grace", "last_name": "hopper"}) == "GH"


def test_email_domain_is_lower_cased():
    assert users.email_domain("Ada@Example.COM") == "example.com"
