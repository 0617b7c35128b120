"""Small statistics as pure functions: how sure a pass rate is, whether two samples differ.

No scipy: a Wilson score interval for a pass rate, and a two-sided Mann-Whitney U test
(exact for small samples without ties, else the normal approximation with tie correction
and a continuity correction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

Z95 = 1.959963984540054
EXACT_MAX = 400  # exact distribution when len(a) * len(b) <= this and there are no ties


def wilson(passes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``passes / total`` (95 % by default); (0, 1) for total 0."""
    if total <= 0:
        return (0.0, 1.0)
    if not 0 <= passes <= total:
        raise ValueError(f"passes {passes} not in 0..{total}")
    p = passes / total
    z2 = z * z
    denom = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    lo = 0.0 if passes == 0 else max(0.0, centre - half)
    hi = 1.0 if passes == total else min(1.0, centre + half)
    return (lo, hi)


def median(xs: Sequence[float]) -> float:
    if not xs:
        raise ValueError("median of nothing")
    s = sorted(xs)
    n = len(s)
    return float(s[n // 2]) if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based) and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


@cache
def _u_count(m: int, n: int, u: int) -> int:
    """How many arrangements of m x's and n y's have U_x == u."""
    if u < 0 or u > m * n:
        return 0
    if m == 0 or n == 0:
        return 1 if u == 0 else 0
    # the largest element is an x (it exceeds all n y's: n more to U) or a y (nothing)
    return _u_count(m - 1, n, u - n) + _u_count(m, n - 1, u)


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of the first sample (pairs (a, b) with a > b, ties 1/2)
    p: float  # two-sided
    method: str  # "exact" or "normal"


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U test of ``a`` against ``b``."""
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        raise ValueError("Mann-Whitney needs two non-empty samples")
    ranks, ties = _ranks([*a, *b])
    u = sum(ranks[:m]) - m * (m + 1) / 2
    if m * n <= EXACT_MAX and all(t == 1 for t in ties):
        k = int(round(min(u, m * n - u)))
        total = math.comb(m + n, m)
        tail = sum(_u_count(m, n, i) for i in range(k + 1)) / total
        return MannWhitney(u, min(1.0, 2 * tail), "exact")
    big_n = m + n
    mu = m * n / 2
    tie_term = sum(t ** 3 - t for t in ties) / (big_n * (big_n - 1))
    var = m * n / 12 * ((big_n + 1) - tie_term)
    if var <= 0:  # every value equal: no evidence of a difference
        return MannWhitney(u, 1.0, "normal")
    zval = max(0.0, abs(u - mu) - 0.5) / math.sqrt(var)
    p = math.erfc(zval / math.sqrt(2))
    return MannWhitney(u, min(1.0, p), "normal")
