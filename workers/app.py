"""The Celery app: its configuration from Settings, its signals, and the Deps of each worker process.

Configuration is read lazily, when Celery first needs it (a worker starting, a task being sent), so
importing workers.tasks never requires a broker; using the app without AUTOFIX_BROKER_URL raises
ConfigError. Delivery is at least once: a task is acknowledged only after it ran
(`task_acks_late`), and requeued when its worker process dies (`task_reject_on_worker_lost`) or, for a
worker that died whole, when Redis's visibility timeout runs out. Every task is therefore written to
be safe to run twice (see tasks.py).

Task events (`worker_send_task_events`, `task_send_sent_event`) are on, so Flower or `celery events`
can watch the workers. Queues: "fix" holds the slow tasks (sandbox runs, git pushes); "ingest" everything else, so that a
backlog of fixes never delays storing new events. Run one worker per queue to keep them apart:
`autofix worker --queues ingest` and `autofix worker --queues fix`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import structlog
from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init, worker_process_init
from kombu.entity import Exchange, Queue

from pipeline import logging_setup
from pipeline.errors import ConfigError
from pipeline.settings import Settings
from pipeline.wiring import Deps
from workers.schedule import beat_schedule

INGEST_QUEUE = "ingest"
FIX_QUEUE = "fix"
ROUTES = {
    "workers.tasks.attempt_fix": {"queue": FIX_QUEUE},
    "workers.tasks.publish_candidate": {"queue": FIX_QUEUE},
    "workers.tasks.follow_up_pull_request": {"queue": FIX_QUEUE},
}


def require_broker(settings: Settings) -> str:
    """The broker URL, or ConfigError saying how to set it."""
    if not settings.broker_url:
        raise ConfigError(
            "AUTOFIX_BROKER_URL is not set: the workers need a Redis URL such as redis://127.0.0.1:6379/0 "
            "(environment variable, or broker_url in autofix.toml)"
        )
    return settings.broker_url


def _restore_sweep(visibility_timeout_s: int) -> dict[str, int]:
    # Kombu looks for expired unacknowledged messages every interval x throttle seconds (100 s by
    # default). A short visibility timeout is pointless unless the sweep is at least as frequent.
    interval = max(1, min(10, visibility_timeout_s // 4))
    throttle = max(1, min(10, visibility_timeout_s // (4 * interval)))
    return {"unacked_restore_interval": interval, "unacked_restore_throttle": throttle}


def _queue(name: str) -> Queue:
    # Its own exchange and routing key: a queue left to Celery's defaults shares the default
    # queue's binding, and a message routed to either would land in both.
    return Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's settings (new lowercase names) for these autofix Settings."""
    url = require_broker(settings)
    # A task still running when the timeout expires is delivered a second time: keep it above the
    # longest attempt_fix (a few sandbox runs of sandbox_timeout_s each).
    visibility = settings.broker_visibility_timeout_s
    return {
        "broker_url": url,
        "result_backend": url,
        "broker_transport_options": {"visibility_timeout": visibility, **_restore_sweep(visibility)},
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A task cut off by a lost broker connection is redelivered anyway; stop running it here.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_track_started": True,
        # Task events for Flower (and `celery events`): started, succeeded, failed, retried, sent.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # Logs are structlog lines on stderr; Celery must not route stderr through its own logger.
        "worker_redirect_stdouts": False,
        "task_queues": (_queue(INGEST_QUEUE), _queue(FIX_QUEUE)),
        "task_default_queue": INGEST_QUEUE,
        "task_routes": ROUTES,
        "beat_schedule": beat_schedule(settings),
        "beat_schedule_filename": str(settings.home / "celerybeat-schedule"),
        "timezone": "UTC",
        "enable_utc": True,
    }


def make_app(settings: Callable[[], Settings] = Settings) -> Celery:
    """An app whose configuration is built from `settings()` when Celery first reads it."""
    celery = Celery("autofix", include=["workers.tasks"])
    celery.add_defaults(lambda: celery_config(settings()))
    return celery


app = make_app()


# --- tasks, typed --------------------------------------------------------------------------------

P = ParamSpec("P")
R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")


class TaskFunction(Protocol[P, R_co]):
    """What `app.task` returns, as far as autofix uses it (Celery ships no type hints)."""

    name: str
    request: Any  # the running task's request (its id, delivery info)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Any: ...  # an AsyncResult
    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...


def task(**options: Any) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
    """`app.task` with the decorated function's signature kept for the type checker."""

    def register(fn: Callable[P, R]) -> TaskFunction[P, R]:
        return cast(TaskFunction[P, R], app.task(**options)(fn))

    return register


# --- one Deps per worker process -----------------------------------------------------------------

_deps: Deps | None = None


def current_deps() -> Deps:
    """This process's Deps, built on first use; its store and sandbox are reused by every task."""
    global _deps
    if _deps is None:
        _deps = Deps(Settings())
    return _deps


def _forget_inherited_deps(**_: Any) -> None:
    # A pool process must not reuse database connections opened by the parent before the fork.
    global _deps
    _deps = None


# --- signals -------------------------------------------------------------------------------------


def _configure_logging(**_: Any) -> None:
    # JSON lines at info unless AUTOFIX_LOG_*; Celery's own logging keeps the root logger.
    logging_setup.configure(defaults=logging_setup.SERVICE_DEFAULTS, stdlib=False)


def _bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task=getattr(task, "name", None), redelivered=bool(delivery.get("redelivered"))
    )


def _clear_task_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


# weak=False: Celery holds receivers weakly by default; these must live as long as the process.
worker_init.connect(_configure_logging, weak=False)
beat_init.connect(_configure_logging, weak=False)
worker_process_init.connect(_forget_inherited_deps, weak=False)
task_prerun.connect(_bind_task_context, weak=False)
task_postrun.connect(_clear_task_context, weak=False)
