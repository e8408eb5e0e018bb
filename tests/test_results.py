"""seglib.results: the results-file schema, spreads and outcome words computed by hand, wrong files refused."""

import json
import math

import pytest

from seglib import results


def document(profile="ci", experiment="07_losses", **figures):
    found = results.new_document(experiment, profile, {"image_size": [64, 128], "epochs": 10, "seeds": [0, 1]},
                                 machine="test machine, 2 CPU cores, no GPU")
    for contender, seeds in (figures or {"a": [0.5, 0.6], "b": [0.3, 0.4]}).items():
        for value in seeds:
            results.add_seed(found, contender, {"mean_category_iou": value, "category_iou": {"flat": value,
                                                                                              "void": math.nan}})
    return found


def test_add_seed_keeps_one_value_per_seed_and_nan_as_null():
    found = document(a=[0.5, 0.6])
    assert found["results"]["a"]["mean_category_iou"] == [0.5, 0.6]
    assert found["results"]["a"]["category_iou"] == {"flat": [0.5, 0.6], "void": [None, None]}


def test_write_then_load_round_trip(tmp_path):
    path = results.write(document(), tmp_path / "07_losses-ci.json")
    assert results.load(path, profile="ci", experiment="07_losses") == json.loads(path.read_text())
    assert not list(tmp_path.glob("*.partial"))


def test_a_file_of_another_profile_is_refused_naming_it(tmp_path):
    path = results.write(document(profile="reference"), tmp_path / "07_losses-reference.json")
    with pytest.raises(ValueError, match=r"07_losses-reference\.json holds results of profile 'reference', not 'ci'"):
        results.load(path, profile="ci")


def test_a_file_of_another_experiment_is_refused(tmp_path):
    path = results.write(document(), tmp_path / "x.json")
    with pytest.raises(ValueError, match="experiment '07_losses', not '10_comparison'"):
        results.load(path, experiment="10_comparison")


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(schema=2), "schema 2, this seglib reads schema 1"),
    (lambda d: d.pop("machine"), "field 'machine' must be a str"),
    (lambda d: d.update(results={}), "no contender"),
    (lambda d: d["results"]["a"].update(mean_category_iou=[0.5]), r"lists of different lengths \[1, 2\]"),
    (lambda d: d["results"]["a"].update(mean_category_iou="0.5"), "must be a non-empty list"),
    (lambda d: d["results"]["a"].update(mean_category_iou=["high", 0.5]), "not a number"),
    (lambda d: d["results"]["a"]["category_iou"].update(flat=[]), r"category_iou\.flat must be a non-empty list"),
])
def test_malformed_documents_are_refused_with_the_field_named(tmp_path, change, message):
    found = document()
    change(found)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(found))
    with pytest.raises(ValueError, match=message):
        results.load(path)
    with pytest.raises(ValueError, match=message):
        results.write(found, tmp_path / "never.json")
    assert not (tmp_path / "never.json").exists()


def test_not_json_and_missing_files(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not a JSON results file"):
        results.load(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="run_profile.py"):
        results.load(tmp_path / "absent.json")


def test_shipped_finds_committed_files_by_profile(tmp_path):
    results.write(document(profile="reference"), tmp_path / "07_losses-reference.json")
    results.write(document(profile="colab"), tmp_path / "07_losses-colab.json")
    results.write(document(experiment="10_comparison"), tmp_path / "10_comparison-ci.json")
    assert sorted(results.shipped("07_losses", tmp_path)) == ["colab", "reference"]


def test_shipped_refuses_a_file_whose_name_and_profile_disagree(tmp_path):
    results.write(document(profile="ci"), tmp_path / "07_losses-reference.json")
    with pytest.raises(ValueError, match="profile 'ci', not 'reference'"):
        results.shipped("07_losses", tmp_path)


def test_spread_by_hand():
    assert results.spread([0.5, 0.7, 0.6]) == results.Spread(0.6, 0.5, 0.7, 3)
    assert results.spread([0.4, None]).count == 1
    assert math.isnan(results.spread([None]).mean)
    assert results.format_spread([0.5, 0.7, 0.6]) == "0.600 (0.500–0.700)"
    assert results.format_spread([0.5]) == "0.500"
    assert results.format_spread([None]) == "–"


@pytest.mark.parametrize("first, second, higher_is_better, words", [
    ([0.6, 0.7], [0.4, 0.5], True, "ahead by more than the spread"),       # 0.6 > 0.5: every seed better
    ([0.4, 0.5], [0.6, 0.7], True, "behind by more than the spread"),
    ([0.5, 0.7], [0.6, 0.65], True, "within the spread"),                  # ranges overlap
    ([0.5, 0.6], [0.6, 0.7], True, "within the spread"),                   # touching counts as overlap
    ([2.0, 2.5], [3.0, 4.0], False, "ahead by more than the spread"),      # seconds: lower is better
    ([3.0, 4.0], [2.0, 2.5], False, "behind by more than the spread"),
    ([0.6], [0.5], True, "ahead on one seed"),
    ([0.5], [0.6], True, "behind on one seed"),
    ([0.5], [0.5], True, "level on one seed"),
    ([0.6], [0.4, 0.5], True, "ahead on one seed"),                        # one side has no spread
    ([0.55, 0.56], [0.6], True, "behind on one seed"),
])
def test_compare_chooses_the_words_from_the_numbers(first, second, higher_is_better, words):
    assert results.compare(first, second, higher_is_better) == words


def test_compare_an_exact_baseline_against_a_range():
    assert results.compare([0.33, 0.51], [0.25], exact=(False, True)) == "ahead by more than the spread"
    assert results.compare([0.2, 0.3], [0.25], exact=(False, True)) == "within the spread"
    assert results.compare([0.33], [0.25], exact=(False, True)) == "ahead on one seed"


def test_compare_needs_values():
    with pytest.raises(ValueError, match="at least one value"):
        results.compare([], [0.5])


def test_outcome_sentence_states_both_figures_and_the_words():
    found = document(a=[0.6, 0.7], b=[0.4, 0.5])
    assert results.outcome(found, "a", "b") == (
        "a (0.650 (0.600–0.700)) is ahead of b (0.450 (0.400–0.500)) by more than the spread "
        "(category mean IoU, profile ci, 2 seeds each).")
    assert results.outcome(found, "b", "a").startswith("b (0.450 (0.400–0.500)) is behind a (0.650")
    overlapping = document(a=[0.5, 0.7], b=[0.6, 0.65])
    assert results.outcome(overlapping, "a", "b") == (
        "a (0.600 (0.500–0.700)) and b (0.625 (0.600–0.650)) are within the spread of each other "
        "(category mean IoU, profile ci, 2 seeds each).")
    baseline = document(a=[0.6, 0.7], b=[0.3])  # b has no "seconds": a baseline without randomness
    assert results.outcome(baseline, "a", "b") == (
        "a (0.650 (0.600–0.700)) is ahead of b (0.300) by more than the spread "
        "(category mean IoU, profile ci, 2 seeds and no seed).")
    for figures in (baseline["results"]["a"], baseline["results"]["b"]):
        figures["seconds"] = [1.0] * len(figures["mean_category_iou"])  # trained contenders: b has one seed
    assert results.outcome(baseline, "a", "b").endswith("on one seed, with no spread to judge by "
                                                        "(category mean IoU, profile ci, 2 seeds and 1 seed).")
    single = document(a=[0.6], b=[0.4, 0.5])
    single["results"]["a"]["seconds"], single["results"]["b"]["seconds"] = [1.0], [1.0, 1.0]  # both trained
    assert results.outcome(single, "a", "b") == (
        "a (0.600) is ahead of b (0.450 (0.400–0.500)) on one seed, with no spread to judge by "
        "(category mean IoU, profile ci, 1 seed and 2 seeds).")
    with pytest.raises(ValueError, match="no 'mean_category_iou' for 'c'"):
        results.outcome(found, "a", "c")


@pytest.mark.parametrize("values, max_epochs, expected", [
    ([0.1, 0.2, 0.3], 10, True),                                  # stopped early: early stopping fired
    ([0.1, 0.3, 0.5, 0.6, 0.6], 5, True),                         # the last fifth (1 epoch) added nothing
    ([0.1, 0.3, 0.5, 0.6, 0.605], 5, True),                       # 0.605 - 0.6 < 0.01: plateau
    ([0.1, 0.3, 0.5, 0.55, 0.6], 5, False),                       # +0.05 in the last fifth: still rising
    ([0.5] * 8 + [0.505, 0.508], 10, True),                       # last fifth = 2 epochs, +0.008
    ([0.5] * 8 + [0.505, 0.52], 10, False),                       # +0.02
])
def test_reached_plateau_by_hand(values, max_epochs, expected):
    assert results.reached_plateau(values, max_epochs) is expected


def test_side_by_side_and_per_category_tables():
    live, reference = document(a=[0.5, 0.6]), document(profile="reference", a=[0.7, 0.8, 0.9], b=[0.1, 0.2, 0.3])
    reference["results"]["a"]["plateau"] = [True, True, False]
    headers, rows = results.side_by_side([live, reference])
    assert headers == ["contender", "ci (this run)", f"reference ({reference['date']})"]
    assert rows[0][0] == "a" and rows[0][1].startswith("0.550 (0.500–0.600) <br><small>2 seeds")
    assert "plateau 2/3" in rows[0][2]
    assert rows[1] == ["b", "–", rows[1][2]]
    headers, rows = results.per_category(live)
    assert headers == ["contender", "flat"]  # void is None for every seed: not a scored category
    assert rows == [["a", "0.55 (0.50–0.60)"]]


def test_describe_names_profile_machine_budget_and_date():
    line = results.describe(document())
    assert line.startswith("profile ci, test machine, 2 CPU cores, no GPU, 64×128 input")
    assert "up to 10 epochs" in line and "seeds 0, 1" in line
