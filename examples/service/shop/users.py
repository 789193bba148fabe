"""User profiles as the pages show them: display names, initials, contact details."""

from __future__ import annotations

from typing import Any


def display_name(profile: dict[str, Any]) -> str:
    """The name in the page header: the nickname if the user set one, else the full name."""
    nickname = profile["nickname"]
    return nickname or f"{profile['first_name']} {profile['last_name']}".strip()


def initials(profile: dict[str, Any]) -> str:
    return (profile["first_name"][:1] + profile["last_name"][:1]).upper()


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()
