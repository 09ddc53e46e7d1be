"""Stratified random sample designs: how many plots, how they are shared out, which ones.

Sample size (Olofsson et al. 2014, eq. 13; Cochran 1977, eq. 5.25): for stratum weights ``W_h``
(area shares) and per-stratum standard deviations ``S_h`` of the quantity of interest,

    n = (sum_h W_h S_h)^2 / SE_target^2,   then   n / (1 + n / N)   for a population of N plots.

For the overall accuracy ``S_h = sqrt(U_h (1 - U_h))`` with ``U_h`` the expected user's accuracy
of stratum ``h``. For the area of one class ``k``, ``S_h = sqrt(p_hk (1 - p_hk))`` with ``p_hk`` the
expected share of ``k`` in stratum ``h``: ``U_k`` in ``k``'s own stratum and ``(1 - U_h) / (C - 1)``
elsewhere (a stratum's errors spread evenly over the other classes).

Allocation: proportional to the strata's sizes with a minimum per stratum (Olofsson et al. 2014,
section 5.1.1: rare classes, such as change, get enough plots for their user's accuracy), capped
at every stratum's number of plots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from landuse.errors import InputError


@dataclass(frozen=True)
class Stratum:
    """One stratum of a design: its population (plots, hectares) and its sample size."""

    name: str
    plots: int  # N_h
    area_ha: float
    n: int  # n_h

    @property
    def inclusion_probability(self) -> float:
        """Probability that a given plot of the stratum is in the sample (n_h / N_h)."""
        return self.n / self.plots if self.plots else 0.0

    @property
    def weight(self) -> float:
        """Plots of the population each sample plot stands for (N_h / n_h)."""
        return self.plots / self.n if self.n else 0.0


def _check_probability(name: str, v: float) -> float:
    if not 0.0 < float(v) < 1.0:
        raise InputError(f"expected user's accuracy of {name} must be within 0..1 (exclusive), got {v}")
    return float(v)


def _fpc(n0: float, population: int | None) -> int:
    if population is not None and population > 0:
        n0 = n0 / (1.0 + n0 / population)
    return max(int(math.ceil(n0 - 1e-9)), 1)


def sample_size_overall(
    weights: Mapping[str, float], expected_users: Mapping[str, float], target_se: float, population: int | None = None
) -> int:
    """Plots needed for a target standard error of the overall accuracy (Olofsson et al. 2014 eq. 13)."""
    if not 0.0 < target_se < 1.0:
        raise InputError(f"`target_se` must be within 0..1 (a standard error of a proportion), got {target_se}")
    total = sum(weights.values())
    if total <= 0:
        raise InputError("the strata have no area; nothing to sample")
    acc = sum(w / total * math.sqrt(_check_probability(k, expected_users[k]) * (1 - expected_users[k])) for k, w in weights.items())
    return _fpc((acc / target_se) ** 2, population)


def sample_size_area(
    weights: Mapping[str, float],
    expected_users: Mapping[str, float],
    target_class: str,
    target_se: float,
    population: int | None = None,
) -> int:
    """Plots needed for a target standard error of one class's area proportion (see the module docstring)."""
    if target_class not in weights:
        raise InputError(f"`target_class` {target_class!r} is not one of the strata {sorted(weights)}")
    if not 0.0 < target_se < 1.0:
        raise InputError(f"the target standard error of an area proportion must be within 0..1, got {target_se}")
    total = sum(weights.values())
    c = len(weights)
    acc = 0.0
    for k, w in weights.items():
        u = _check_probability(k, expected_users[k])
        p = u if k == target_class else (1.0 - u) / max(c - 1, 1)
        acc += w / total * math.sqrt(p * (1 - p))
    return _fpc((acc / target_se) ** 2, population)


def allocate(n: int, sizes: Mapping[str, int], minimum: int = 20) -> dict[str, int]:
    """Share ``n`` plots over strata: proportional to their sizes, at least ``minimum`` each
    (never more than a stratum has). The total is ``n``, or more when the minimums need it, or
    fewer when the strata hold fewer plots."""
    if n < 1:
        raise InputError(f"the sample size must be at least 1 plot, got {n}")
    if minimum < 0:
        raise InputError(f"`min_per_stratum` must be >= 0, got {minimum}")
    names = list(sizes)
    cap = np.array([int(sizes[k]) for k in names], dtype=np.int64)
    if (cap < 0).any():
        raise InputError("stratum sizes must be non-negative")
    n = min(n, int(cap.sum()))
    alloc = np.minimum(cap, minimum)
    remaining = n - int(alloc.sum())
    while remaining > 0:
        room = cap - alloc
        open_ = room > 0
        if not open_.any():
            break
        share = remaining * cap * open_ / float((cap * open_).sum())
        add = np.minimum(np.floor(share).astype(np.int64), room)
        if add.sum() == 0:  # hand the rest out one by one, largest remainder first
            order = np.argsort(-(share - np.floor(share)) - 1e-12 * np.arange(len(names)))
            for i in order:
                if remaining == 0:
                    break
                if room[i] > 0:
                    alloc[i] += 1
                    room[i] -= 1
                    remaining -= 1
            continue
        alloc += add
        remaining -= int(add.sum())
    return {k: int(v) for k, v in zip(names, alloc.tolist(), strict=True)}


def draw(units_by_stratum: Mapping[str, Sequence[int]], allocation: Mapping[str, int], seed: int) -> dict[str, list[int]]:
    """A stratified random sample without replacement: ``allocation[h]`` of ``units_by_stratum[h]``.

    Deterministic for a seed: the strata are visited in name order and their units sorted first.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {}
    for name in sorted(units_by_stratum):
        units = np.sort(np.asarray(units_by_stratum[name], dtype=np.int64))
        k = int(allocation.get(name, 0))
        if k > units.size:
            raise InputError(f"stratum {name} has {units.size} plots, cannot draw {k}")
        out[name] = sorted(rng.choice(units, size=k, replace=False).tolist()) if k else []
    return out


def expected_se_overall(strata: Sequence[Stratum], expected_users: Mapping[str, float], fpc: bool = True) -> float | None:
    """Standard error of the overall accuracy the allocation should give if the expected user's
    accuracies hold (stratified variance, Olofsson et al. 2014 eq. 5 with ``n_h``)."""
    total = sum(s.area_ha for s in strata)
    if total <= 0:
        return None
    var = 0.0
    for s in strata:
        if s.n < 1:
            return None
        u = float(expected_users[s.name])
        f = (1 - s.n / s.plots) if fpc and s.plots else 1.0
        var += (s.area_ha / total) ** 2 * u * (1 - u) / s.n * f
    return math.sqrt(var)
