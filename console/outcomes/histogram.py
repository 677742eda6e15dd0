"""Cycle times kept as a compact histogram, so percentiles over any set of days can be merged.

A time of v seconds falls in bucket floor(ln(1 + v) * SCALE); each bucket keeps the count and
the sum of its values. A percentile is read the way percentile_cont reads sorted values
(interpolating between the two nearest ranks), taking a bucket's values to be their mean. A
bucket spans a factor e^(1/SCALE) of (1 + v), so a percentile read here is within 2.1% of
(1 + the exact one) seconds, and exact when the values sharing a bucket are equal. A day of
cycle times between a second and a month needs at most about 750 buckets, usually far fewer.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate

SCALE = 50
PRECISION = math.exp(1 / SCALE) - 1  # the relative error bound on (1 + seconds)

# bucket -> [count, sum of seconds]; buckets are strings, as JSON has them, so a histogram read
# from the database is merged without converting a key per bucket.
Histogram = dict[str, list[float]]


def bucket_sql(value: str) -> str:
    """The SQL expression of a value's bucket (negative times, clock skew, count as zero)."""
    return f"floor(ln(1 + greatest({value}, 0)) * {SCALE})::int"


def bucket_of(seconds: float) -> int:
    return math.floor(math.log1p(max(seconds, 0.0)) * SCALE)


def histogram_of(values: Iterable[float]) -> Histogram:
    found: Histogram = {}
    for value in values:
        cell = found.setdefault(str(bucket_of(value)), [0, 0.0])
        cell[0] += 1
        cell[1] += value
    return found


def merge(into: Histogram, other: Mapping[str, Sequence[float]]) -> None:
    """Add `other` into `into` (called for every day of every workflow: kept lean)."""
    found = into.get
    for key, (count, total) in other.items():
        cell = found(key)
        if cell is None:
            into[key] = [count, total]
        else:
            cell[0] += count
            cell[1] += total


def percentiles(histogram: Histogram, fractions: Sequence[float]) -> list[float | None]:
    """percentile_cont of each fraction over the histogram's values; None when it is empty."""
    buckets = sorted((int(key), count, total) for key, (count, total) in histogram.items() if count)
    if not buckets:
        return [None for _ in fractions]
    means = [total / count for _, count, total in buckets]
    # ends[i]: how many values lie in buckets 0..i, so rank r (from 0) is in the first bucket
    # whose end is past it.
    ends = list(accumulate(int(count) for _, count, _ in buckets))

    def value_at(rank: int) -> float:
        return means[bisect_right(ends, rank)]

    found: list[float | None] = []
    for fraction in fractions:
        position = fraction * (ends[-1] - 1)
        low = math.floor(position)
        high = math.ceil(position)
        below = value_at(low)
        found.append(below + (position - low) * (value_at(high) - below))
    return found
