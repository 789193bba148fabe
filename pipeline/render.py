"""Records -> the JSON shapes of the command-line contract (DESIGN.md)."""

from __future__ import annotations

from typing import Any

from pipeline.flow import FixOutcome
from pipeline.records import FixCandidate, Issue, Verification


def verification_json(v: Verification | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "verified": v.verified, "reason": v.reason, "reproduced": v.reproduced,
        "repro_passes_after": v.repro_passes_after, "tests_pass_after": v.tests_pass_after,
        "applied": v.applied, "tests_run": v.tests_run,
        "replays": [{"name": r.name, "role": r.role, "before": r.before.value,
                     "after": r.after.value if r.after is not None else None, "detail": r.detail,
                     "depth": r.depth, "judged": r.judged}
                    for r in v.replays],
        "not_replayable": list(v.not_replayable), "newly_failing": list(v.newly_failing),
        "static_problems": list(v.static_problems), "patched_depth": v.patched_depth,
        "runs": [{"kind": r.kind, "command": r.command, "exit_code": r.exit_code, "duration_s": r.duration_s,
                  "timed_out": r.timed_out, "output_tail": r.output_tail[-2000:]} for r in v.runs],
    }


def candidate_json(c: FixCandidate) -> dict[str, Any]:
    return {
        "id": c.id, "issue": c.issue_fingerprint, "strategy": c.strategy, "status": c.status.value,
        "confidence": c.confidence, "confidence_parts": dict(c.confidence_parts), "patch": c.patch.diff,
        "files": list(c.patch.files), "description": c.patch.description, "base_commit": c.base_commit,
        "verification": verification_json(c.verification),
        "cost": {"tokens": c.cost.tokens, "seconds": c.cost.seconds, "usd": c.cost.usd},
    }


def issue_json(i: Issue) -> dict[str, Any]:
    return {
        "fingerprint": i.fingerprint, "title": i.title, "culprit": i.culprit, "fix_class": i.fix_class,
        "count": i.count, "priority": i.priority, "status": i.status.value, "repo": i.repo,
        "first_seen": i.first_seen.isoformat(), "last_seen": i.last_seen.isoformat(),
        "cluster": i.cluster_id,
    }


def outcome_json(o: FixOutcome) -> dict[str, Any]:
    best = o.best
    return {
        "status": o.status,
        "reason": o.reason,
        "queued": o.queued,
        "commit": o.commit,
        "commit_source": o.commit_source,
        "patch": best.patch.diff if best else None,
        "strategy": best.strategy if best else None,
        "description": best.patch.description if best else None,
        "confidence": best.confidence if best else 0.0,
        "confidence_parts": dict(best.confidence_parts) if best else {},
        "localization": [{"path": loc.path, "function": loc.function, "line": loc.line, "role": loc.role}
                         for loc in o.context.ranked],
        "unmatched_frames": list(o.context.unmatched_frames),
        "excluded_frames": list(o.context.excluded_frames),
        "verification": verification_json(best.verification) if best else None,
        "reproduction": o.plan.source if o.plan and o.plan.source else None,
        "replays": [{"name": r.name, "role": r.role, "test": r.test_name} for r in o.plan.replays] if o.plan else [],
        "not_replayable": list(o.plan.not_replayable) if o.plan else [],
        "candidates": [candidate_json(c) for c in o.candidates],
        "cost": {"tokens": o.cost.tokens, "seconds": o.cost.seconds, "usd": o.cost.usd},
    }
