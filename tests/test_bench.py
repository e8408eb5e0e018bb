"""Tests of seglib.bench's timing helpers and of the wording it chooses from measured times (no real timing here:
the clock is a fake one that each timed call moves on by a known amount)."""

import math

import pytest

from seglib import bench


class FakeClock:
    """Stands in for the ``time`` module inside seglib.bench: ``perf_counter`` reads ``now``, which the timed
    functions move on."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def costing(self, seconds: float, calls: list | None = None):
        """A function that takes ``seconds`` on this clock (and notes each call in ``calls``)."""
        def function():
            self.now += seconds
            if calls is not None:
                calls.append(seconds)
        return function


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(bench, "time", fake)
    return fake


# ---------------------------------------------------------------------------------------------------------
# Keeping every sample
# ---------------------------------------------------------------------------------------------------------


def test_sample_seconds_keeps_every_sample_after_the_warmup(clock):
    costs = iter([9.0, 1.0, 2.0, 4.0])   # the first call is the untimed warm-up

    def function():
        clock.now += next(costs)

    assert bench.sample_seconds(function, repeats=3, warmup=1) == [1.0, 2.0, 4.0]


def test_median_seconds_is_the_median_of_the_samples(clock):
    costs = iter([9.0, 3.0, 1.0, 100.0])

    def function():
        clock.now += next(costs)

    assert bench.median_seconds(function, repeats=3) == 3.0


def test_interleaved_samples_take_turns_and_keep_the_order_given(clock):
    calls = []
    fast, slow = clock.costing(1.0, calls), clock.costing(5.0, calls)
    assert bench.interleaved_sample_seconds([slow, fast], repeats=2, warmup=1) == [[5.0, 5.0], [1.0, 1.0]]
    assert calls == [5.0, 1.0] * 3   # one warm-up round, then two timed rounds, one call of each per round


@pytest.mark.parametrize("repeats, warmup", [(0, 1), (-1, 0), (3, -1)])
def test_sample_counts_must_make_sense(repeats, warmup):
    with pytest.raises(ValueError):
        bench.sample_seconds(lambda: None, repeats=repeats, warmup=warmup)


# ---------------------------------------------------------------------------------------------------------
# The rule: Mann-Whitney's exact two-sided test at 5 %
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, m, counts", [
    (1, 1, (1, 1)),                # candidate below or above the baseline sample
    (2, 2, (1, 1, 2, 1, 1)),       # the 6 orderings of aabb: U = 0, 1, 2 (abab... two ways), 3, 4
    (1, 3, (1, 1, 1, 1)),
])
def test_null_distribution_of_u_by_hand(n, m, counts):
    assert bench._u_counts(n, m) == counts


@pytest.mark.parametrize("n, m", [(5, 5), (3, 8), (10, 10)])
def test_null_distribution_counts_every_ordering_once(n, m):
    counts = bench._u_counts(n, m)
    assert sum(counts) == math.comb(n + m, n) and len(counts) == n * m + 1 and counts == counts[::-1]


@pytest.mark.parametrize("candidate, baseline, verdict", [
    # 5 and 5, fully split: chance 2 / C(10, 5) = 2/252 = 0.008
    ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], "faster"),
    ([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], "slower"),
    # U = 2 (7 beats 5 and 6): 2 * (1 + 1 + 2) / 252 = 0.032 <= 0.05
    ([1, 2, 3, 4, 7], [5, 6, 8, 9, 10], "faster"),
    # U = 3 (8 beats 5, 6, 7): 2 * (1 + 1 + 2 + 3) / 252 = 0.056 > 0.05
    ([1, 2, 3, 4, 8], [5, 6, 7, 9, 10], "within the noise"),
    # interleaved samples: U = 0 + 1 + 2 + 3 + 4 = 10 of 25
    ([1, 3, 5, 7, 9], [2, 4, 6, 8, 10], "within the noise"),
    # too few samples for any verdict: 3 and 3 fully split, 2/20 = 0.1; 3 and 4, 2/35 = 0.057; 1 and 1, 2/2
    ([1, 2, 3], [4, 5, 6], "within the noise"),
    ([1, 2, 3], [4, 5, 6, 7], "within the noise"),
    ([1], [100], "within the noise"),
    # just enough: 4 and 4, 2/70 = 0.029; 3 and 5, 2/56 = 0.036; 2 and 8, 2/45 = 0.044
    ([1, 2, 3, 4], [5, 6, 7, 8], "faster"),
    ([5, 6, 7], [1, 2, 3, 4, 4.5], "slower"),
    ([1, 2], [3, 4, 5, 6, 7, 8, 9, 10], "faster"),
    # a tie counts one half, rounded towards no verdict: U = 0.5 -> P(U <= 1) = 2/252, twice 0.016
    ([1, 2, 3, 4, 5], [5, 6, 7, 8, 9], "faster"),
    ([1, 1, 1, 1], [1, 1, 1, 1], "within the noise"),
    # only the order counts, not the unit or the size of the gap
    ([0.010, 0.011, 0.012, 0.013, 0.014], [0.0141, 0.015, 0.016, 0.017, 0.018], "faster"),
])
def test_compare_times_by_hand(candidate, baseline, verdict):
    assert bench.compare_times(candidate, baseline) == verdict


def test_compare_times_is_symmetric():
    candidate, baseline = [1, 2, 3, 4, 7], [5, 6, 8, 9, 10]
    assert bench.compare_times(candidate, baseline) == "faster"
    assert bench.compare_times(baseline, candidate) == "slower"


def test_a_stricter_significance_asks_for_a_clearer_split():
    candidate, baseline = [1, 2, 3, 4, 7], [5, 6, 8, 9, 10]   # chance 0.032
    assert bench.compare_times(candidate, baseline, significance=0.01) == "within the noise"


@pytest.mark.parametrize("candidate, baseline, message", [
    ([], [1.0], "candidate_seconds holds no samples"),
    ([1.0], [], "baseline_seconds holds no samples"),
    ([1.0, 0.0], [1.0], "positive, finite"),
    ([1.0], [-2.0], "positive, finite"),
    ([float("nan")], [1.0], "positive, finite"),
])
def test_compare_times_refuses_what_is_not_a_time(candidate, baseline, message):
    with pytest.raises(ValueError, match=message):
        bench.compare_times(candidate, baseline)


def test_significance_must_be_a_probability():
    with pytest.raises(ValueError, match="significance"):
        bench.compare_times([1, 2, 3, 4], [5, 6, 7, 8], significance=0)


# ---------------------------------------------------------------------------------------------------------
# The phrase a chapter prints
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("candidate, baseline, phrase", [
    ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], "2.67× faster"),                  # medians 3 and 8: 8 / 3
    ([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], "2.67× slower"),
    ([1, 3, 5, 7, 9], [2, 4, 6, 8, 10], "within the noise (0.83×)"),      # 5 / 6
    # chapter 15's case: int8 a little slower than float32 on every sample must not read "1.0× faster"
    ([10.5, 10.6, 10.4, 10.7, 10.8], [10.0, 10.1, 9.9, 10.2, 10.3], "1.05× slower"),   # 10.6 / 10.1
    # chapter 13's case: 66 ms served against 69 ms in process, samples overlapping
    ([0.066, 0.071, 0.064, 0.069, 0.062], [0.069, 0.065, 0.074, 0.068, 0.070], "within the noise (0.96×)"),
])
def test_ratio_phrase_by_hand(candidate, baseline, phrase):
    assert bench.ratio_phrase(candidate, baseline) == phrase
