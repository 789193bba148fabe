"""The gate's record: what reviewers and pull requests said about each kind of fix, and what follows.

A kind of fix is a (fix class, strategy) pair, e.g. ("KeyError", "template:get_default"). Its record:

    accepted = approvals + merged pull requests
    rejected = rejections + pull requests closed unmerged + merged fixes that regressed

Acceptance is the mean of a Beta posterior. The prior is the strategy family's fixed prior
(gates.STRATEGY_PRIOR, capped at 0.9 so that it is a proper Beta) worth `prior_strength` decisions:

    acceptance = (s·m + accepted) / (s + accepted + rejected)          s = prior_strength, m = prior

The rule the gate applies (all three from one record, so a reviewer sees one story):

1. The confidence's strategy_prior part is its weight times the acceptance (it replaces the fixed
   prior; with no decisions yet it is the fixed prior, capped).
2. Once the record holds at least `min_decisions` outcomes and its acceptance p is below
   `target_acceptance` t, the confidence a candidate needs rises linearly from gate.min_confidence
   toward 1.0:   bar = min + (1 - min) · (t - p) / t.   More evidence is needed to be shown: e.g. the
   repo's tests passing, not just the reproduction.
3. Once the record holds at least `min_decisions` outcomes and p is below `hold_below`, candidates of
   that kind are held whatever their confidence (kept for audit, never queued) until the record
   changes or the settings do.

`stats` turns the same outcomes into what `autofix stats` prints: acceptance per kind, the
calibration table (confidence bucket against acceptance) and rejection reasons by frequency.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pipeline.gates import STRATEGY_PRIOR, Bar
from pipeline.ports import Outcome
from pipeline.settings import GateConfig, LearningConfig

PRIOR_CAP = 0.9
BUCKETS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # calibration buckets [low, high); the last includes 1.0
_ACCEPTING = frozenset({"approved", "merged"})


def family(strategy: str) -> str:
    return strategy.split(":", 1)[0]


def prior_mean(strategy: str) -> float:
    return min(STRATEGY_PRIOR.get(family(strategy), 0.5), PRIOR_CAP)


@dataclass(frozen=True)
class Record:
    """The outcomes of one kind of fix."""

    fix_class: str
    strategy: str
    approvals: int = 0
    merged: int = 0
    rejections: int = 0
    closed: int = 0
    regressed: int = 0

    @property
    def accepted(self) -> int:
        return self.approvals + self.merged

    @property
    def rejected(self) -> int:
        return self.rejections + self.closed + self.regressed

    @property
    def decisions(self) -> int:
        return self.accepted + self.rejected

    def acceptance(self, config: LearningConfig) -> float:
        s, m = config.prior_strength, prior_mean(self.strategy)
        return (s * m + self.accepted) / (s + self.decisions)

    def bar(self, config: LearningConfig, gate: GateConfig) -> Bar | None:
        """The raised bar for this kind of fix, or None while its record does not call for one."""
        p = self.acceptance(config)
        if self.decisions < config.min_decisions or p >= config.target_acceptance:
            return None
        t, low = config.target_acceptance, gate.min_confidence
        why = (f"reviewers accepted {self.accepted} of {self.decisions} {self.fix_class} fixes by "
               f"{self.strategy}, acceptance {p:.2f}")
        hold = f"held: {why}, below {config.hold_below:.2f}" if p < config.hold_below else None
        return Bar(round(low + (1 - low) * (t - p) / t, 4), hold, why)


def _counted(record: Record, kind: str) -> Record:
    names = {"approved": "approvals", "merged": "merged", "rejected": "rejections", "closed": "closed",
             "regressed": "regressed"}
    name = names[kind]
    return replace(record, **{name: getattr(record, name) + 1})


@dataclass(frozen=True)
class Ledger:
    """Every kind of fix's record, and what the gate takes from it."""

    config: LearningConfig
    records: Mapping[tuple[str, str], Record] = field(default_factory=dict)

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[Outcome], config: LearningConfig) -> Ledger:
        records: dict[tuple[str, str], Record] = {}
        for outcome in outcomes:
            key = (outcome.fix_class, outcome.strategy)
            records[key] = _counted(records.get(key, Record(*key)), outcome.kind)
        return cls(config, records)

    def record(self, fix_class: str, strategy: str) -> Record:
        return self.records.get((fix_class, strategy), Record(fix_class, strategy))

    def judge(self, fix_class: str, strategy: str, gate: GateConfig) -> tuple[dict[str, float], Bar | None]:
        """The prior for gates.confidence_parts (keyed by family, as it looks it up) and the bar."""
        record = self.record(fix_class, strategy)
        return {family(strategy): round(record.acceptance(self.config), 4)}, record.bar(self.config, gate)


# --- stats ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    record: Record
    acceptance: float
    bar: Bar | None


@dataclass(frozen=True)
class CalibrationBucket:
    low: float
    high: float
    candidates: int  # decided candidates whose confidence falls in [low, high)
    accepted: int

    @property
    def rate(self) -> float | None:
        return self.accepted / self.candidates if self.candidates else None


@dataclass(frozen=True)
class Stats:
    acceptance: tuple[Acceptance, ...]  # most decisions first
    calibration: tuple[CalibrationBucket, ...]
    reasons: tuple[tuple[str, int], ...]  # rejection reasons, most frequent first


def stats(outcomes: Sequence[Outcome], config: LearningConfig, gate: GateConfig) -> Stats:
    ledger = Ledger.from_outcomes(outcomes, config)
    rows = sorted(ledger.records.values(), key=lambda r: (-r.decisions, r.fix_class, r.strategy))
    return Stats(
        tuple(Acceptance(r, round(r.acceptance(config), 4), r.bar(config, gate)) for r in rows),
        calibration(outcomes),
        rejection_reasons(outcomes),
    )


def calibration(outcomes: Iterable[Outcome]) -> tuple[CalibrationBucket, ...]:
    """Per confidence bucket: decided candidates and how many were accepted.

    A candidate counts as accepted when it was approved or merged and was never rejected, closed
    unmerged or regressed.
    """
    confidence: dict[str, float] = {}
    kinds: dict[str, set[str]] = defaultdict(set)
    for outcome in outcomes:
        confidence[outcome.candidate_id] = outcome.confidence
        kinds[outcome.candidate_id].add(outcome.kind)
    buckets = []
    for low, high in zip(BUCKETS, BUCKETS[1:], strict=False):
        inside = [c for c, value in confidence.items()
                  if low <= value < high or (high == BUCKETS[-1] and value == high)]
        accepted = sum(1 for c in inside if kinds[c] <= _ACCEPTING)
        buckets.append(CalibrationBucket(low, high, len(inside), accepted))
    return tuple(buckets)


def rejection_reasons(outcomes: Iterable[Outcome]) -> tuple[tuple[str, int], ...]:
    """Reasons compared case- and space-insensitively, each shown as its most used spelling."""
    counts: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in outcomes:
        if outcome.kind != "rejected" or not outcome.reason.strip():
            continue
        spelled = " ".join(outcome.reason.split())
        key = spelled.casefold()
        counts[key] += 1
        spellings[key][spelled] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple((spellings[key].most_common(1)[0][0], n) for key, n in ranked)
