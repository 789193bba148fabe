"""The grouping benchmark: the pairwise metric on hand-made labellings, and the committed set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.benchmark.grouping import (
    DEFAULT_SET,
    Labelled,
    Mistake,
    evaluate,
    grouping_json,
    load_set,
    report,
    score,
)
from pipeline.errors import InvalidInput


def labelled(*rows: str) -> list[Labelled]:
    """'name label predicted' per row."""
    return [Labelled(*row.split()) for row in rows]


def test_pairwise_counts_and_rates_of_a_hand_made_labelling_are_exact() -> None:
    # a, b, c are one bug; d another. Predicted: {a, b, d} and {c}.
    result = score(labelled("a X p1", "b X p1", "c X p2", "d Y p1"))

    # 6 pairs: ab right; ac, bc split wrongly; ad, bd merged wrongly; cd right to be apart.
    assert (result.true_positives, result.false_positives, result.false_negatives) == (1, 2, 2)
    assert (result.precision, result.recall, result.f1) == (0.3333, 0.3333, 0.3333)
    assert (result.events, result.true_groups, result.predicted_groups) == (4, 2, 2)
    assert set(result.mistakes) == {
        Mistake("split", "a", "c", "X", "X"),
        Mistake("split", "b", "c", "X", "X"),
        Mistake("merged", "a", "d", "X", "Y"),
        Mistake("merged", "b", "d", "X", "Y"),
    }


def test_precision_and_recall_differ_when_only_one_kind_of_mistake_is_made() -> None:
    # Truly {a, b, c} and {d, e}; predicted {a, b}, {c}, {d, e}: 2 of 4 same-pairs found, none wrong.
    result = score(labelled("a X 1", "b X 1", "c X 2", "d Y 3", "e Y 3"))

    assert (result.precision, result.recall, result.f1) == (1.0, 0.5, 0.6667)


def test_all_singletons_predicted_as_singletons_is_perfect_by_convention() -> None:
    result = score(labelled("a X 1", "b Y 2", "c Z 3"))

    assert (result.precision, result.recall, result.f1, result.mistakes) == (1.0, 1.0, 1.0, ())


def test_report_shows_the_parts_of_a_split_group_and_the_events_of_a_merge() -> None:
    text = report(score(labelled("a X p1", "b X p1", "c X p2", "d Y p1")))

    assert "split X (2 pairs): a, b | c" in text
    assert "merged X with Y: a, b, d" in text


def test_a_file_labelled_with_the_wrong_number_of_events_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "events").mkdir()
    shutil.copy(DEFAULT_SET / "events" / "example-app.log", tmp_path / "events" / "app.log")
    (tmp_path / "labels.json").write_text(json.dumps({"events": {"app.log": ["only-one"]}}))


    with pytest.raises(InvalidInput, match="app.log holds 2 events, 1 labelled"):
        load_set(tmp_path)


def test_every_label_of_the_committed_set_is_a_documented_group() -> None:
    document = json.loads((DEFAULT_SET / "labels.json").read_text())
    used = {
        label
        for value in document["events"].values()
        for label in ([value] if isinstance(value, str) else value)
    }

    assert used == set(document["groups"])
    assert all(why.strip() for why in document["groups"].values())


def test_the_committed_set_scores_issues_and_clusters_above_the_target_with_nothing_configured() -> None:
    result = evaluate(DEFAULT_SET)
    print()
    print(report(result))

    assert 80 <= result.events.events <= 150
    assert result.events.true_groups >= 25
    assert result.events.true_positives + result.events.false_negatives > 0  # same-bug pairs to find
    assert result.events.f1 >= 0.95 and result.clusters.f1 >= 0.95
    # Clusters join groups: fewer true clusters than true groups.
    assert result.clusters.true_groups < result.events.true_groups


def test_every_cluster_label_names_documented_groups() -> None:
    document = json.loads((DEFAULT_SET / "labels.json").read_text())
    assert set(document["clusters"]) <= set(document["groups"])
    assert len(set(document["clusters"].values())) < len(document["clusters"])


def test_configured_packages_score_as_well_as_the_guess() -> None:
    guessed, configured = evaluate(DEFAULT_SET), evaluate(DEFAULT_SET, configured=True)
    assert configured.configured and not guessed.configured
    assert configured.events.f1 >= 0.95 and configured.clusters.f1 >= 0.95


def test_a_cluster_merging_two_groups_is_right_for_clusters_and_wrong_for_issues(tmp_path: Path) -> None:
    (tmp_path / "events").mkdir()
    for name in ("grocer-checkout-1.json", "grocer-shelf-labels-1.json"):
        shutil.copy(DEFAULT_SET / "events" / name, tmp_path / "events" / name)
    labels = {"grocer-checkout-1.json": "checkout", "grocer-shelf-labels-1.json": "labels"}
    (tmp_path / "labels.json").write_text(json.dumps({"events": labels, "clusters": {"checkout": "zero", "labels": "zero"}}))
    result = evaluate(tmp_path)
    assert (result.events.precision, result.events.recall) == (1.0, 1.0)  # two issues, rightly
    assert (result.clusters.true_positives, result.clusters.false_negatives) == (1, 0)  # one root cause


def test_bench_json_keeps_the_issue_figures_at_the_top_and_adds_clusters() -> None:
    data = grouping_json(evaluate(DEFAULT_SET))
    assert {"precision", "recall", "f1", "mistakes", "configured"} <= set(data)
    assert isinstance(data["clusters"], dict) and "f1" in data["clusters"]
