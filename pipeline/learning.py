"""The gate's record: what reviewers and pull requests said about each kind of fix, and what follows.

A kind of fix is a (fix class, strategy) pair, e.g. ("KeyError", "template:get_default"). Its record:

    accepted = approvals + merged pull requests
    rejected = rejections + pull requests closed unmerged + merged fixes that regressed

Acceptance is the mean of a Beta posterior, pooled partially across the class. The strategy family's
fixed prior m (gates.STRATEGY_PRIOR, capped at 0.9 so that it is a proper Beta), worth s =
`prior_strength` decisions, is first updated by the class's other strategies, and that is the prior
the strategy's own record updates:

    class prior   m_c = (s·m + accepted by other strategies) / (s + decisions on other strategies)
    acceptance    p   = (s·m_c + accepted) / (s + decisions)

So a strategy never tried in a class reviewers keep rejecting starts where the class stands, not at
the optimistic family prior. The rule the gate applies (all from p, so a reviewer sees one story):

1. The confidence's strategy_prior part is its weight times p (it replaces the fixed prior; with no
   decisions in the class it is the fixed prior, capped).
2. Once the class holds at least `min_decisions` outcomes and p is below `target_acceptance` t, the
   confidence a candidate needs rises linearly from gate.min_confidence toward 1.0:
   bar = min + (1 - min) · (t - p) / t. More evidence is needed to be shown: e.g. the repo's tests
   passing, not just the reproduction.
3. Once the class holds at least `min_decisions` outcomes and p is below `hold_below`, candidates of
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

    def class_decisions(self, fix_class: str) -> int:
        return sum(r.decisions for (c, _), r in self.records.items() if c == fix_class)

    def acceptance(self, fix_class: str, strategy: str) -> float:
        """The Beta posterior mean for the kind, its prior pooled from the class's other strategies."""
        s, own = self.config.prior_strength, self.record(fix_class, strategy)
        others = [r for (c, k), r in self.records.items() if c == fix_class and k != strategy]
        class_prior = ((s * prior_mean(strategy) + sum(r.accepted for r in others))
                       / (s + sum(r.decisions for r in others)))
        return (s * class_prior + own.accepted) / (s + own.decisions)

    def bar(self, fix_class: str, strategy: str, gate: GateConfig) -> Bar | None:
        """The raised bar for this kind of fix, or None while its class's record does not call for one."""
        config, p = self.config, self.acceptance(fix_class, strategy)
        decided = self.class_decisions(fix_class)
        if decided < config.min_decisions or p >= config.target_acceptance:
            return None
        t, low = config.target_acceptance, gate.min_confidence
        accepted = sum(r.accepted for (c, _), r in self.records.items() if c == fix_class)
        own = self.record(fix_class, strategy)
        why = (f"reviewers accepted {accepted} of {decided} {fix_class} fixes ({own.accepted} of "
               f"{own.decisions} by {strategy}), acceptance {p:.2f}")
        hold = f"held: {why}, below {config.hold_below:.2f}" if p < config.hold_below else None
        return Bar(round(low + (1 - low) * (t - p) / t, 4), hold, why)

    def judge(self, fix_class: str, strategy: str, gate: GateConfig) -> tuple[dict[str, float], Bar | None]:
        """The prior for gates.confidence_parts (keyed by family, as it looks it up) and the bar."""
        prior = {family(strategy): round(self.acceptance(fix_class, strategy), 4)}
        return prior, self.bar(fix_class, strategy, gate)


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
        tuple(Acceptance(r, round(ledger.acceptance(r.fix_class, r.strategy), 4),
                         ledger.bar(r.fix_class, r.strategy, gate)) for r in rows),
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
