"""Merged duration histograms: exact counts and sums, percentiles within the stated bound."""

from __future__ import annotations

import itertools
import math
import random

from sources._stats import (
    BIN_COUNT,
    HOUR_BOUNDS,
    RELATIVE_ERROR,
    Bucket,
    CaseStats,
    Dimension,
    Durations,
    hour_bin,
    merge_stats,
)


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def within_bound(estimate: float, exact: float) -> bool:
    """What the schema promises: RELATIVE_ERROR of the exact value, 0.5 h under one hour."""
    if exact < 1:
        return abs(estimate - exact) <= 0.5
    return abs(estimate - exact) <= RELATIVE_ERROR * exact + 1e-9


def test_bins_are_fixed_log_spaced_boundaries() -> None:
    assert hour_bin(0) == 0
    assert hour_bin(0.99) == 0
    assert hour_bin(1.0) == 1
    assert hour_bin(2.0) == 5  # four bins per doubling
    assert hour_bin(10**9) == BIN_COUNT - 1
    ratios = [b / a for a, b in itertools.pairwise(HOUR_BOUNDS)]
    assert max(abs(ratio - 2**0.25) for ratio in ratios) < 1e-12
    assert 0.09 < RELATIVE_ERROR < 0.091


def test_percentiles_of_merged_sources_are_within_the_stated_bound() -> None:
    rng = random.Random(7)
    sources = [[rng.lognormvariate(5, 1.2) for _ in range(rng.randint(50, 900))] for _ in range(4)]
    sources.append([rng.uniform(0, 3) for _ in range(40)])  # short ones, under and near 1 h
    parts = []
    for values in sources:
        part = CaseStats((Dimension.SOURCE,))
        bucket = part.bucket(("x",))
        for value in values:
            bucket.resolution.add(value)
            bucket.count += 1
        part.total.merge(bucket)
        parts.append(part)
    merged = merge_stats((Dimension.SOURCE,), parts)
    everything = [value for values in sources for value in values]
    durations = merged.buckets[("x",)].resolution
    assert durations.count == len(everything) == merged.total.count
    assert math.isclose(durations.total_hours, sum(everything))
    for fraction in (0.5, 0.9, 0.1, 0.99):
        estimate = durations.percentile(fraction)
        assert estimate is not None
        exact = nearest_rank(everything, fraction)
        assert within_bound(estimate, exact), (fraction, estimate, exact)
    mean = durations.mean
    assert mean is not None and math.isclose(mean, sum(everything) / len(everything))


def test_every_single_value_is_estimated_within_the_bound() -> None:
    for value in [0.0, 0.2, 0.999, 1.0, 1.1, 1.99, 2.0, 17.3, 360.0, 8760.0, 65535.0]:
        durations = Durations()
        durations.add(value)
        estimate = durations.percentile(0.5)
        assert estimate is not None and within_bound(estimate, value), (value, estimate)


def test_bucket_merge_adds_counts_exactly() -> None:
    one = Bucket(("10",), count=3, open=2, overdue=1, resolved=1)
    two = Bucket(("10",), count=5, open=1, overdue=1, resolved=4)
    one.merge(two)
    assert (one.count, one.open, one.overdue, one.resolved) == (8, 3, 2, 5)
