"""`autofix stats`: what reviewers and pull requests said, and what the gate learned from it."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from pipeline.cli._app import JsonOpt, app, deps, out, print_json
from pipeline.learning import Stats
from pipeline.learning import stats as compute_stats
from pipeline.settings import Settings


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Acceptance per fix class and strategy, the calibration table, rejection reasons by frequency."""
    d = deps()
    result = compute_stats(d.store.outcomes(), d.settings.learning, d.settings.gate)
    if as_json:
        print_json(stats_json(result, d.settings))
        return
    table = Table("fix class", "strategy", "approved", "merged", "rejected", "closed", "regressed",
                  "acceptance", "bar", title="Acceptance per fix class and strategy")
    for row in result.acceptance:
        r = row.record
        bar = "held" if row.bar and row.bar.hold else f"{row.bar.min_confidence:.2f}" if row.bar else "-"
        table.add_row(r.fix_class, r.strategy, str(r.approvals), str(r.merged), str(r.rejections), str(r.closed),
                      str(r.regressed), f"{row.acceptance:.2f}", bar)
    out().print(table)
    calibration = Table("confidence", "decided", "accepted", "acceptance", title="Calibration")
    for b in result.calibration:
        calibration.add_row(f"{b.low:.1f}-{b.high:.1f}", str(b.candidates), str(b.accepted),
                            "-" if b.rate is None else f"{b.rate:.2f}")
    out().print(calibration)
    reasons = Table("reason", "times", title="Rejection reasons")
    for reason, count in result.reasons:
        reasons.add_row(reason, str(count))
    out().print(reasons)


def stats_json(result: Stats, settings: Settings) -> dict[str, Any]:
    rule = settings.learning
    return {
        "acceptance": [{
            "fix_class": row.record.fix_class, "strategy": row.record.strategy,
            "approvals": row.record.approvals, "merged": row.record.merged, "rejections": row.record.rejections,
            "closed": row.record.closed, "regressed": row.record.regressed, "accepted": row.record.accepted,
            "rejected": row.record.rejected, "acceptance": row.acceptance,
            "bar": None if row.bar is None else {"min_confidence": row.bar.min_confidence,
                                                 "held": row.bar.hold is not None, "why": row.bar.why},
        } for row in result.acceptance],
        "calibration": [{"low": b.low, "high": b.high, "candidates": b.candidates, "accepted": b.accepted,
                         "rate": b.rate} for b in result.calibration],
        "rejection_reasons": [{"reason": reason, "count": count} for reason, count in result.reasons],
        "rule": {"enabled": rule.enabled, "prior_strength": rule.prior_strength,
                 "min_decisions": rule.min_decisions, "target_acceptance": rule.target_acceptance,
                 "hold_below": rule.hold_below, "min_confidence": settings.gate.min_confidence},
    }
