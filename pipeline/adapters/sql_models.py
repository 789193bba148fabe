"""The SQL tables of the store, as SQLAlchemy typed ORM models (one per stored record).

These models describe the schema; they never create it. The schema is created and changed only by the
Alembic migrations in adapters/migrations/, and a test checks that migrations and models agree.
Rows hold plain columns; converting them to and from the frozen records is sql_convert's job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints, so that later migrations (batch mode on SQLite rebuilds tables) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends.

    SQLite has no time zone type and SQLAlchemy writes the wall-clock digits only, so every value is
    converted to UTC before it is written and marked UTC when read back. Naive inputs are taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def as_utc(value: datetime) -> datetime:
    """The same instant with tzinfo=timezone.utc; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class IssueRow(Base):
    __tablename__ = "issues"

    fingerprint: Mapped[str] = mapped_column(String(255), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    culprit: Mapped[str] = mapped_column(Text)
    fix_class: Mapped[str] = mapped_column(String(255))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer)
    priority: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32), index=True)
    repo: Mapped[str | None] = mapped_column(String(255))
    project: Mapped[str | None] = mapped_column(String(255))
    latest_event_id: Mapped[str | None] = mapped_column(String(255))
    cluster_id: Mapped[str | None] = mapped_column(String(64), index=True)
    sentry_issue_id: Mapped[str | None] = mapped_column(String(255), index=True)
    sentry_status: Mapped[str | None] = mapped_column(String(32))


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(ForeignKey("issues.fingerprint"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(index=True)
    # The parsed ErrorEvent (without `raw`) and the payload as received, kept apart for re-parsing.
    event: Mapped[dict[str, Any]]
    raw: Mapped[dict[str, Any]]


class CandidateRow(Base):
    __tablename__ = "candidates"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    issue_fingerprint: Mapped[str] = mapped_column(ForeignKey("issues.fingerprint"), index=True)
    strategy: Mapped[str] = mapped_column(String(255))
    diff: Mapped[str] = mapped_column(Text)
    files: Mapped[list[Any]]
    description: Mapped[str] = mapped_column(Text)
    patch_tokens: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    confidence_parts: Mapped[dict[str, Any]]
    cost_tokens: Mapped[int] = mapped_column(Integer)
    cost_seconds: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime]
    reproduction: Mapped[str | None] = mapped_column(Text)
    base_commit: Mapped[str] = mapped_column(String(64), server_default="")

    verification: Mapped[VerificationRow | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )
    runs: Mapped[list[VerificationRunRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="VerificationRunRow.position"
    )


class VerificationRow(Base):
    """The Verification summary of a candidate; absent when the candidate was never verified."""

    __tablename__ = "verifications"

    candidate_id: Mapped[str] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )
    reproduced: Mapped[bool] = mapped_column(Boolean)
    repro_passes_after: Mapped[bool] = mapped_column(Boolean)
    tests_pass_after: Mapped[bool | None] = mapped_column(Boolean)
    applied: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    # Each replay as {name, role, before, after, detail}; the others as lists of strings.
    replays: Mapped[list[Any]] = mapped_column(server_default=text("'[]'"))
    not_replayable: Mapped[list[Any]] = mapped_column(server_default=text("'[]'"))
    newly_failing: Mapped[list[Any]] = mapped_column(server_default=text("'[]'"))
    static_problems: Mapped[list[Any]] = mapped_column(server_default=text("'[]'"))
    # Stack distance of the deepest frame the patch changes, and the in-app frames the stack has.
    patched_depth: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    stack_frames: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class VerificationRunRow(Base):
    """One SandboxRun of a candidate's verification, in the order it ran."""

    __tablename__ = "verification_runs"
    __table_args__ = (UniqueConstraint("candidate_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    candidate_id: Mapped[str] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(Text)
    exit_code: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    output_tail: Mapped[str] = mapped_column(Text)
    timed_out: Mapped[bool] = mapped_column(Boolean)


class ReviewRow(Base):
    __tablename__ = "reviews"
    # A review has no id of its own: the same decision by the same reviewer at the same instant is
    # the same review, so a retried save stores it once.
    __table_args__ = (UniqueConstraint("candidate_id", "reviewer", "decision", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    candidate_id: Mapped[str] = mapped_column(ForeignKey("candidates.id"), index=True)
    decision: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class PullRequestRow(Base):
    __tablename__ = "pull_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    candidate_id: Mapped[str] = mapped_column(ForeignKey("candidates.id"), unique=True)
    repo: Mapped[str] = mapped_column(String(255))
    branch: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    commit_sha: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    number: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    base_sha: Mapped[str | None] = mapped_column(String(64))
    merge_commit_sha: Mapped[str | None] = mapped_column(String(64))
    head_candidate_id: Mapped[str | None] = mapped_column(String(255))
    ci_rounds: Mapped[int] = mapped_column(Integer, server_default="0")
    ci_checked_sha: Mapped[str | None] = mapped_column(String(64))
    needs_human: Mapped[bool] = mapped_column(Boolean, server_default=false())
    regressed_at: Mapped[datetime | None]


class HintRow(Base):
    """Feedback for an issue's next fix attempt; (issue, source, ref) is stored once."""

    __tablename__ = "hints"
    __table_args__ = (UniqueConstraint("issue_fingerprint", "source", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issue_fingerprint: Mapped[str] = mapped_column(ForeignKey("issues.fingerprint"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    ref: Mapped[str] = mapped_column(String(255))
    candidate_id: Mapped[str | None] = mapped_column(String(255))
    at: Mapped[datetime]


class LogCursorRow(Base):
    """How far `autofix ingest --follow` has read a log file, and which generation of it."""

    __tablename__ = "log_cursors"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    head: Mapped[str] = mapped_column(String(64))
    device: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


# SQLite makes only an INTEGER PRIMARY KEY an auto-incrementing rowid; PostgreSQL gets 64 bits.
INBOX_ID = BigInteger().with_variant(Integer(), "sqlite")


class InboxRow(Base):
    """An accepted payload, raw, written before the sender got its 2xx; processed afterwards."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(INBOX_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    project: Mapped[str | None] = mapped_column(String(255))
    headers: Mapped[dict[str, Any]]
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    request_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]


class AttemptRow(Base):
    """One fix attempt (records.Attempt); the partial unique index admits one running per issue.

    No foreign key to issues: regrouping may remove an issue, and its attempts stay as history.
    """

    __tablename__ = "attempts"
    __table_args__ = (
        Index("uq_attempts_running_issue", "issue_fingerprint", unique=True,
              sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'")),
        Index("ix_attempts_started_at", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issue_fingerprint: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    task_id: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer)
    usd: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    sandbox_runs: Mapped[int] = mapped_column(Integer)
    retry_after: Mapped[datetime | None]


class ReviewerRow(Base):
    """A person who may sign in to the review UI; the password is kept as a scrypt hash."""

    __tablename__ = "reviewers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ApiTokenRow(Base):
    """An API token: its public id and the SHA-256 of its secret, never the secret."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class AuditRow(Base):
    """One reviewer decision: who, what, on which candidate, when, from where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    candidate_id: Mapped[str] = mapped_column(String(255), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(16))
    client: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
