"""The accounts half of SqlStore (the Accounts port, pipeline/accounts.py): reviewers, API tokens,
the audit log of decisions, and candidate-id prefix lookups for the CLI, the UI and the API."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.accounts import ApiToken, AuditAction, AuditEntry, Reviewer, Via
from pipeline.adapters.sql_models import ApiTokenRow, AuditRow, CandidateRow, ReviewerRow


class SqlAccounts:
    """The Accounts port on the store's database; SqlStore supplies the sessions."""

    def _reading(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def save_reviewer(self, reviewer: Reviewer) -> None:
        with self._writing() as session:
            session.merge(ReviewerRow(name=reviewer.name, password_hash=reviewer.password_hash,
                                      created_at=reviewer.created_at))

    def get_reviewer(self, name: str) -> Reviewer | None:
        with self._reading() as session:
            row = session.get(ReviewerRow, name)
            return None if row is None else Reviewer(row.name, row.password_hash, row.created_at)

    def save_token(self, token: ApiToken) -> None:
        with self._writing() as session:
            session.add(ApiTokenRow(id=token.id, name=token.name, secret_hash=token.secret_hash,
                                    created_at=token.created_at))

    def get_token(self, token_id: str) -> ApiToken | None:
        with self._reading() as session:
            row = session.get(ApiTokenRow, token_id)
            return None if row is None else ApiToken(row.id, row.name, row.secret_hash, row.created_at)

    def add_audit(self, entry: AuditEntry) -> None:
        with self._writing() as session:
            session.add(AuditRow(candidate_id=entry.candidate_id, actor=entry.actor, action=entry.action,
                                 via=entry.via, client=entry.client[:255], detail=entry.detail, at=entry.at))

    def audit_for(self, candidate_id: str) -> list[AuditEntry]:
        query = select(AuditRow).where(AuditRow.candidate_id == candidate_id).order_by(AuditRow.at, AuditRow.id)
        with self._reading() as session:
            return [_entry(row) for row in session.scalars(query)]

    def candidate_ids_with_prefix(self, prefix: str, limit: int = 10) -> Sequence[str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (select(CandidateRow.id).where(CandidateRow.id.like(f"{escaped}%", escape="\\"))
                 .order_by(CandidateRow.id).limit(limit))
        with self._reading() as session:
            return list(session.scalars(query))


def _entry(row: AuditRow) -> AuditEntry:
    action: AuditAction = row.action  # type: ignore[assignment]
    via: Via = row.via  # type: ignore[assignment]
    return AuditEntry(row.candidate_id, row.actor, action, via, row.client, row.detail, row.at)
