"""The grouping benchmark: the pairwise metric on hand-made labellings, and the committed set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.benchmark.grouping import DEFAULT_SET, Labelled, Mistake, evaluate, load_set, report, score
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


def test_the_committed_set_loads_and_scores_above_zero() -> None:
    result = evaluate(DEFAULT_SET)
    print()
    print(report(result))

    assert 40 <= result.events <= 80
    assert result.true_groups >= 20
    assert result.f1 > 0
    assert result.true_positives + result.false_negatives > 0  # the set holds same-bug pairs to find
