"""Background jobs: the weekly digest email, built per user and queued for the mailer."""

from __future__ import annotations

import logging
from typing import Any

from shop import store, users

logger = logging.getLogger("shop.jobs")


class DigestError(Exception):
    """One user's digest could not be built; the job logs it and goes on with the next user."""


def digest_line(profile: dict[str, Any]) -> str:
    try:
        name = users.display_name(profile)
    except KeyError as exc:
        raise DigestError(f"profile {profile.get('id')} is incomplete") from exc
    return f"Hi {name}, here is your week at the shop."


def run_weekly_digest(user_ids: list[str]) -> list[str]:
    """The digest greetings queued, one per user that could be built; failures are logged."""
    queued = []
    for user_id in user_ids:
        try:
            queued.append(digest_line(store.PROFILES[user_id]))
        except DigestError:
            logger.exception("weekly digest failed for user %s", user_id)
            continue
        logger.info("weekly digest queued for user %s", user_id)
    return queued
