"""The runtime's configuration: Celery sends Flower's task events, the beat's schedule comes from
[schedule], and serve's processing mode from ingest_processing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import Settings
from workers.app import celery_config

BROKER = "redis://127.0.0.1:6379/14"


def test_task_events_are_on_and_the_schedule_follows_the_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, broker_url=BROKER, schedule={"triage_top_k": 3, "sweep_every_s": 5})
    config = celery_config(settings)

    assert config["worker_send_task_events"] and config["task_send_sent_event"]
    schedule = config["beat_schedule"]
    assert schedule["triage"]["kwargs"] == {"limit": 3}
    assert schedule["sweep"] == {"task": "workers.tasks.sweep_inbox", "schedule": 5.0, "options": {"expires": 5.0}}
    assert "pull-sentry" not in schedule  # no Sentry API configured
    pulling = Settings(home=tmp_path, broker_url=BROKER, sentry_url="https://sentry.example.com",
                       sentry_api_token="t", schedule={"pull_projects": ["shop"]})
    assert celery_config(pulling)["beat_schedule"]["pull-sentry"]["task"] == "workers.tasks.pull_configured"


def test_serve_processes_through_celery_when_a_broker_is_set_or_asked_for(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).processing_mode == "in_process"
    assert Settings(home=tmp_path, broker_url=BROKER).processing_mode == "celery"
    assert Settings(home=tmp_path, broker_url=BROKER, ingest_processing="in_process").processing_mode == "in_process"
    with pytest.raises(ConfigError, match="needs broker_url"):
        _ = Settings(home=tmp_path, ingest_processing="celery").processing_mode
