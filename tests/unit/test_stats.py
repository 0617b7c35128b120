"""Wilson intervals and the Mann-Whitney U test against hand-computed values."""

from __future__ import annotations

import pytest

from harness.core.stats import mann_whitney, median, wilson


@pytest.mark.parametrize("k,n,lo,hi", [(10, 10, 0.722, 1.0), (5, 10, 0.237, 0.763),
                                       (0, 10, 0.0, 0.278), (1, 2, 0.095, 0.905),
                                       (2, 2, 0.342, 1.0)])
def test_wilson_known_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson(k, n)
    assert got[0] == pytest.approx(lo, abs=5e-4) and got[1] == pytest.approx(hi, abs=5e-4)


def test_wilson_edges() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 10)[0] == 0.0
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_mann_whitney_separated_exact() -> None:
    t = mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert t.u == 0 and t.method == "exact"
    assert t.p == pytest.approx(2 / 252, abs=1e-12)  # 0.0079
    assert mann_whitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]).p == pytest.approx(2 / 252)


def test_mann_whitney_small_exact_by_hand() -> None:
    # a=[1,3], b=[2,4]: U_a = 1 (3 > 2); the U distribution of 2 vs 2 is 1,1,2,1,1 over 6
    # arrangements, P(U <= 1) = 2/6, two-sided p = 2/3.
    t = mann_whitney([1, 3], [2, 4])
    assert t.u == 1 and t.p == pytest.approx(2 / 3)
    # 3 vs 3 fully separated: 2 / C(6,3) = 0.1 -- never below 0.05
    assert mann_whitney([1, 2, 3], [4, 5, 6]).p == pytest.approx(0.1)
    # U at its mean (a=[1,4], b=[2,3]: U = 2 = mn/2): p = 1
    assert mann_whitney([1, 4], [2, 3]).p == pytest.approx(1.0)


def test_mann_whitney_ties_normal_approximation() -> None:
    # a=[1,2,2,3], b=[2,3,4,5]: mid-ranks a: 1, 3, 3, 5.5 -> R=12.5, U = 2.5; ties (2:3, 3:2)
    # var = 16/12 * (9 - (24 + 6) / 56) = 11.2857; z = (8 - 2.5 - 0.5) / 3.3594 = 1.4884
    t = mann_whitney([1, 2, 2, 3], [2, 3, 4, 5])
    assert t.u == 2.5 and t.method == "normal"
    assert t.p == pytest.approx(0.13666, abs=1e-4)


def test_mann_whitney_all_equal() -> None:
    assert mann_whitney([1, 1, 1], [1, 1, 1]).p == 1.0


def test_median() -> None:
    assert median([3, 1, 2]) == 2 and median([4, 1, 2, 3]) == 2.5
