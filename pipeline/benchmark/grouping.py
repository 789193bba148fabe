"""The grouping benchmark's score: how well fingerprints (issues) and clusters (root causes) agree
with a labelled set of real events.

    python -m pipeline.benchmark.grouping [SET_DIR] [--configured]     # default bench/grouping

A set is a folder holding `labels.json` and `events/`. labels.json maps each file under events/ to
its true group: a string when the file holds one event, a list (one label per event, in file order)
when it holds several, as a log file does. Its optional "clusters" maps groups to their root-cause
cluster (a group not named is a cluster of its own); its "in_app_packages" are what a deployment
would configure, used only with `configured=True`: the headline figures are with nothing
configured. bench/grouping/make_set.py builds the committed set.

Scores are pairwise, over every unordered pair of events: a pair is predicted-same when the two
fingerprints are equal and truly-same when the two labels are. Precision is the share of merged
pairs that belong together (1.0 when nothing is merged), recall the share of pairs that belong
together that were merged (1.0 when no two events belong together).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from pipeline.errors import InvalidInput
from pipeline.ingest import prepare
from pipeline.log_templates import Templates
from pipeline.source_lines import SourceLines
from pipeline.sources import load_path
from pipeline.sources.in_app import InAppRules

DEFAULT_SET = Path(__file__).resolve().parents[2] / "bench" / "grouping"


@dataclass(frozen=True)
class Labelled:
    """One event of the set: its name (`file`, or `file#i` for the i-th event of a file), true label
    and predicted group key (the fingerprint)."""

    name: str
    label: str
    predicted: str


@dataclass(frozen=True)
class Mistake:
    kind: str  # "split": truly one group, fingerprinted apart; "merged": two groups, one fingerprint
    a: str
    b: str
    a_label: str
    b_label: str


@dataclass(frozen=True)
class GroupingScore:
    events: int
    true_groups: int
    predicted_groups: int
    true_positives: int  # pairs merged that belong together
    false_positives: int  # pairs merged that belong apart
    false_negatives: int  # pairs split that belong together
    precision: float
    recall: float
    f1: float
    mistakes: tuple[Mistake, ...]


def score(items: Sequence[Labelled]) -> GroupingScore:
    """Pairwise precision, recall and F1 of the predicted groups against the labels."""
    tp = fp = fn = 0
    mistakes: list[Mistake] = []
    for x, y in combinations(items, 2):
        truly, predicted = x.label == y.label, x.predicted == y.predicted
        tp += truly and predicted
        if truly != predicted:
            fp += predicted
            fn += truly
            mistakes.append(Mistake("merged" if predicted else "split", x.name, y.name, x.label, y.label))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return GroupingScore(
        events=len(items),
        true_groups=len({i.label for i in items}),
        predicted_groups=len({i.predicted for i in items}),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(f1, 4),
        mistakes=tuple(mistakes),
    )


@dataclass(frozen=True)
class GroupingResult:
    """Both scores of one run: events against their groups, and against their clusters."""

    events: GroupingScore
    clusters: GroupingScore
    configured: bool


def load_set(set_dir: Path, configured: bool = False) -> tuple[list[Labelled], list[Labelled]]:
    """Every labelled event of the set, fingerprinted and clustered as `autofix ingest` would (log
    frames marked, message templates mined in a fresh miner); InvalidInput when labels and files
    disagree. Returns the items scored by issue and the items scored by cluster."""
    labels_path = set_dir / "labels.json"
    try:
        document = json.loads(labels_path.read_text(encoding="utf-8"))
        labels = document["events"]
        packages = frozenset(document.get("in_app_packages", ())) if configured else frozenset()
        clusters = dict(document.get("clusters", {}))
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(str(labels_path), f"no readable 'events' mapping: {exc}") from exc
    rules, templates, lines = InAppRules.of(packages), Templates(), SourceLines()
    by_issue: list[Labelled] = []
    by_cluster: list[Labelled] = []
    for name, label in sorted(labels.items()):
        events = load_path(set_dir / "events" / name)
        wanted = label if isinstance(label, list) else [label]
        if len(events) != len(wanted):
            raise InvalidInput(str(labels_path), f"{name} holds {len(events)} events, {len(wanted)} labelled")
        for i, (event, true_label) in enumerate(zip(events, wanted, strict=True)):
            shown = f"{name}#{i}" if isinstance(label, list) else name
            _, issue = prepare(event, rules, templates, lines)  # as `autofix ingest` would, in file order
            by_issue.append(Labelled(shown, str(true_label), issue.fingerprint))
            truth = clusters.get(str(true_label), str(true_label))
            by_cluster.append(Labelled(shown, truth, issue.cluster_id or issue.fingerprint))
    return by_issue, by_cluster


def evaluate(set_dir: Path = DEFAULT_SET, configured: bool = False) -> GroupingResult:
    """Fingerprint and cluster every event of the labelled set in `set_dir` and score both."""
    by_issue, by_cluster = load_set(set_dir, configured)
    return GroupingResult(score(by_issue), score(by_cluster), configured)


def report(result: GroupingResult | GroupingScore) -> str:
    """The figures, then the mistakes by group: each split group's parts, each merge's events."""
    if isinstance(result, GroupingScore):
        return _report_one(result)
    setting = "configured in-app packages" if result.configured else "nothing configured"
    return (f"issues ({setting}): {_report_one(result.events)}\n"
            f"clusters ({setting}): {_report_one(result.clusters)}")


def _report_one(result: GroupingScore) -> str:
    lines = [
        f"{result.events} events, {result.true_groups} true groups, {result.predicted_groups} predicted: "
        f"precision {result.precision:.3f}, recall {result.recall:.3f}, F1 {result.f1:.3f} "
        f"({result.true_positives} pairs right, {result.false_positives} merged wrongly, "
        f"{result.false_negatives} split wrongly)"
    ]
    split: defaultdict[str, set[frozenset[str]]] = defaultdict(set)
    merged: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for m in result.mistakes:
        if m.kind == "split":
            split[m.a_label].add(frozenset((m.a, m.b)))
        else:
            merged[(m.a_label, m.b_label) if m.a_label < m.b_label else (m.b_label, m.a_label)].update(
                (m.a, m.b)
            )
    for label, apart in sorted(split.items()):
        parts = " | ".join(", ".join(sorted(part)) for part in _parts(apart))
        lines.append(f"  split {label} ({len(apart)} pairs): {parts}")
    for (a, b), names in sorted(merged.items()):
        lines.append(f"  merged {a} with {b}: {', '.join(sorted(names))}")
    return "\n".join(lines)


def _parts(apart: set[frozenset[str]]) -> list[list[str]]:
    """The predicted groups of one true group, from the pairs split apart (the events that share a
    fingerprint are never in a split pair together). Only events of some split pair appear."""
    parts: list[list[str]] = []
    for name in sorted({n for pair in apart for n in pair}):
        home = next((p for p in parts if frozenset((p[0], name)) not in apart), None)
        if home is None:
            parts.append([name])
        else:
            home.append(name)
    return parts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Score grouping against a labelled event set.")
    parser.add_argument("set_dir", type=Path, nargs="?", default=DEFAULT_SET)
    parser.add_argument("--configured", action="store_true", help="Use the set's in_app_packages.")
    args = parser.parse_args(argv)
    print(report(evaluate(args.set_dir, args.configured)))


def grouping_json(result: GroupingResult) -> dict[str, object]:
    """The figures for `autofix bench --json`, with every mistake named: issues first (the keys the
    bench report always had), clusters under "clusters"."""
    return {**_score_json(result.events), "configured": result.configured, "clusters": _score_json(result.clusters)}


def _score_json(result: GroupingScore) -> dict[str, object]:
    return {
        "events": result.events, "true_groups": result.true_groups, "predicted_groups": result.predicted_groups,
        "precision": result.precision, "recall": result.recall, "f1": result.f1,
        "true_positives": result.true_positives, "false_positives": result.false_positives,
        "false_negatives": result.false_negatives,
        "mistakes": [{"kind": m.kind, "a": m.a, "b": m.b, "a_label": m.a_label, "b_label": m.b_label}
                     for m in result.mistakes],
    }


if __name__ == "__main__":
    main()
