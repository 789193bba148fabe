"""Customer accounts, sharded by the account id."""

from __future__ import annotations

from typing import Any


class AccountNotFound(LookupError):
    """The account id names no account in its shard."""


SHARDS = 16


def load_account(store: dict[str, dict[str, Any]], account_id: str, email: str) -> dict[str, Any]:
    shard = int(account_id.replace("-", ""), 16) % SHARDS
    try:
        return store[account_id]
    except KeyError:
        raise AccountNotFound(f"no account {account_id} for {email} in shard {shard}") from None


def greeting(store: dict[str, dict[str, Any]], account_id: str, email: str) -> str:
    account = load_account(store, account_id, email)
    return f"Hello {account['name']}"
