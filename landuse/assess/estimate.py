"""Accuracy and error-adjusted area from a stratified random reference sample.

The estimators are those of Stehman (2014), "Estimating area and map accuracy for stratified
random sampling when the strata are different from the map classes", International Journal of
Remote Sensing 35: 4923-4939. Every quantity is a ratio ``R = Y / X`` of two population totals,
each estimated by the stratified estimator ``Y_hat = sum_h N_h * mean_h(y)``, with the variance

    V(R_hat) = 1 / X_hat^2 * sum_h N_h^2 (1 - n_h / N_h) (s2_yh + R^2 s2_xh - 2 R s_xyh) / n_h

(the factor ``1 - n_h / N_h``, the finite-population correction, is optional: the papers' worked
examples leave it out). For a sample unit ``u`` of area ``a_u``, map class ``m_u`` and reference
class ``r_u``: the area proportion of class ``k`` takes ``y = a_u [r_u = k]`` and ``x = a_u``;
overall accuracy ``y = a_u [r_u = m_u]``; user's accuracy of ``k`` ``y = a_u [m_u = r_u = k]``,
``x = a_u [m_u = k]``; producer's accuracy ``x = a_u [r_u = k]``; cell ``(i, j)`` of the error
matrix ``y = a_u [m_u = i, r_u = j]``.

When the strata are the map classes and the units have equal areas these are algebraically the
stratified estimators of Olofsson et al. (2013, 2014) — "Good practices for estimating area and
assessing accuracy of land change", Remote Sensing of Environment 148: 42-57, equations 2-11 —
so one implementation serves both (the tests reproduce both papers' worked examples).

Confidence intervals are ``estimate +/- z * SE`` with ``z = 1.96`` (95 %), as in both papers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from landuse.errors import InputError

Z95 = 1.96


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and the half-width of its confidence interval."""

    value: float | None
    se: float | None
    ci: float | None  # half-width: value +/- ci

    @property
    def lower(self) -> float | None:
        return None if self.value is None or self.ci is None else self.value - self.ci

    @property
    def upper(self) -> float | None:
        return None if self.value is None or self.ci is None else self.value + self.ci

    def scaled(self, factor: float) -> Estimate:
        """The same estimate in another unit (proportion -> hectares ...)."""
        def s(v: float | None) -> float | None:
            return None if v is None else v * factor

        return Estimate(s(self.value), s(self.se), s(self.ci))

    def to_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "se": self.se, "ci95": self.ci, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True)
class Assessment:
    """Accuracy and error-adjusted areas of one map from one labelled sample."""

    classes: list[str]
    strata: list[str]
    method: str
    n_by_stratum: dict[str, int]
    stratum_sizes: dict[str, float]  # N_h (units: plots, pixels)
    counts: np.ndarray  # (C, C) sample counts, rows = map class, columns = reference class
    proportions: np.ndarray  # (C, C) estimated proportions of area, rows = map, columns = reference
    overall: Estimate
    users: dict[str, Estimate]
    producers: dict[str, Estimate]
    area_proportion: dict[str, Estimate]
    area: dict[str, Estimate]  # in ``area_unit``
    mapped_area: dict[str, float]  # in ``area_unit``
    total_area: float
    area_unit: str
    z: float
    fpc: bool
    groups: dict[str, Estimate] = field(default_factory=dict)  # extra class groups (e.g. "any change") in area_unit
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(sum(self.n_by_stratum.values()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``estimate.json``)."""
        def est(d: Mapping[str, Estimate]) -> dict[str, Any]:
            return {k: v.to_dict() for k, v in d.items()}

        return {
            "method": self.method,
            "confidence": f"95 percent (estimate +/- {self.z:.2f} SE)",
            "finite_population_correction": self.fpc,
            "classes": list(self.classes),
            "strata": list(self.strata),
            "sample_size": self.n,
            "n_by_stratum": dict(self.n_by_stratum),
            "stratum_sizes": dict(self.stratum_sizes),
            "error_matrix_counts": {"rows": "map", "columns": "reference", "matrix": self.counts.astype(int).tolist()},
            "error_matrix_proportions": {"rows": "map", "columns": "reference", "matrix": self.proportions.tolist()},
            "overall_accuracy": self.overall.to_dict(),
            "users_accuracy": est(self.users),
            "producers_accuracy": est(self.producers),
            "area_proportion": est(self.area_proportion),
            "area_unit": self.area_unit,
            "total_area": self.total_area,
            "mapped_area": dict(self.mapped_area),
            "area": est(self.area),
            "groups": est(self.groups),
            "warnings": list(self.warnings),
        }


def _estimate_of(d: Mapping[str, Any]) -> Estimate:
    return Estimate(d.get("value"), d.get("se"), d.get("ci95"))


def assessment_from_dict(d: Mapping[str, Any]) -> Assessment:
    """An :class:`Assessment` read back from its :meth:`Assessment.to_dict` form (``estimate.json``)."""
    try:
        def ests(key: str) -> dict[str, Estimate]:
            return {k: _estimate_of(v) for k, v in (d.get(key) or {}).items()}

        z = float(str(d.get("confidence", "")).split("+/-")[1].split()[0]) if "+/-" in str(d.get("confidence", "")) else Z95
        return Assessment(
            list(d["classes"]), list(d["strata"]), str(d["method"]), {k: int(v) for k, v in d["n_by_stratum"].items()},
            {k: float(v) for k, v in d["stratum_sizes"].items()}, np.array(d["error_matrix_counts"]["matrix"], dtype=np.int64),
            np.array(d["error_matrix_proportions"]["matrix"], dtype=np.float64), _estimate_of(d["overall_accuracy"]),
            ests("users_accuracy"), ests("producers_accuracy"), ests("area_proportion"), ests("area"),
            {k: float(v) for k, v in d["mapped_area"].items()}, float(d["total_area"]), str(d["area_unit"]), z,
            bool(d["finite_population_correction"]), ests("groups"), list(d.get("warnings") or []),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"not an assessment (estimate.json) document: {exc}; run landuse assess estimate again") from None


def _ratio(y: np.ndarray, x: np.ndarray, h: np.ndarray, strata: Sequence[str], sizes: np.ndarray,
           fpc: bool, z: float) -> Estimate:
    """Stratified ratio estimate of ``sum y / sum x`` with its SE (Stehman 2014, eqs. 27-28)."""
    ybar = np.zeros(len(strata))
    xbar = np.zeros(len(strata))
    n_h = np.zeros(len(strata))
    for k in range(len(strata)):
        sel = h == k
        n_h[k] = sel.sum()
        if n_h[k]:
            ybar[k] = y[sel].mean()
            xbar[k] = x[sel].mean()
    y_hat = float((sizes * ybar).sum())
    x_hat = float((sizes * xbar).sum())
    if x_hat <= 0:
        return Estimate(None, None, None)
    r = y_hat / x_hat
    var = 0.0
    for k in range(len(strata)):
        sel = h == k
        nk = n_h[k]
        if fpc and nk >= sizes[k]:
            continue  # a census of the stratum: no sampling variance
        if nk < 2:
            if nk == 1 and (y[sel].any() or x[sel].any()):
                return Estimate(r, None, None)  # a variance needs two units in every contributing stratum
            continue
        ys, xs = y[sel], x[sel]
        s2y = ys.var(ddof=1)
        s2x = xs.var(ddof=1)
        sxy = float(((ys - ys.mean()) * (xs - xs.mean())).sum() / (nk - 1))
        f = (1.0 - nk / sizes[k]) if fpc else 1.0
        var += sizes[k] ** 2 * max(f, 0.0) * (s2y + r * r * s2x - 2 * r * sxy) / nk
    se = float(np.sqrt(max(var, 0.0))) / x_hat
    return Estimate(r, se, z * se)


def assess(
    strata: Sequence[str],
    mapped: Sequence[str],
    reference: Sequence[str],
    stratum_sizes: Mapping[str, float],
    *,
    unit_area: Sequence[float] | None = None,
    total_area: float | None = None,
    mapped_area: Mapping[str, float] | None = None,
    classes: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    area_unit: str = "units",
    fpc: bool = True,
    z: float = Z95,
) -> Assessment:
    """Accuracy and area estimates from a stratified random sample.

    ``strata``, ``mapped``, ``reference`` (and ``unit_area``) hold one entry per labelled sample
    unit. ``stratum_sizes`` is ``N_h``, the number of population units of each stratum (every
    stratum of the design, sampled or not). ``total_area`` is the population's area in
    ``area_unit`` (default: ``sum N_h`` units); ``mapped_area`` the map's area of each class (default,
    when the strata are the map classes: the strata's share of ``total_area``). ``groups`` names
    unions of reference classes whose area is estimated too (for example every change class).
    """
    s = [str(v) for v in strata]
    m = [str(v) for v in mapped]
    r = [str(v) for v in reference]
    if not (len(s) == len(m) == len(r)):
        raise InputError(f"sample columns differ in length: {len(s)} strata, {len(m)} map classes, {len(r)} reference labels")
    if not s:
        raise InputError("the sample holds no labelled plots; label the sample first (landuse label ...)")
    names = [str(k) for k in stratum_sizes]
    unknown = sorted(set(s) - set(names))
    if unknown:
        raise InputError(f"sample units in strata {unknown} that the design does not list ({names}); the sample and its design.json disagree")
    sizes = np.array([float(stratum_sizes[k]) for k in names])
    if (sizes <= 0).any():
        raise InputError(f"every stratum needs a positive size, got {dict(zip(names, sizes.tolist(), strict=True))}")
    h = np.array([names.index(v) for v in s])
    n_by = {k: int((h == i).sum()) for i, k in enumerate(names)}
    warnings: list[str] = []
    empty = [k for k, n in n_by.items() if n == 0]
    if empty:
        raise InputError(f"strata {empty} have no labelled plot; label at least two plots of every stratum")
    thin = [k for i, (k, n) in enumerate(n_by.items()) if n == 1 and not (fpc and sizes[i] <= 1)]
    if thin:
        warnings.append(f"strata {thin} have one labelled plot: standard errors that need them are not defined")
    a = np.ones(len(s)) if unit_area is None else np.asarray(unit_area, dtype=np.float64)
    if a.shape != (len(s),) or (a < 0).any():
        raise InputError("unit_area needs one non-negative area per sample unit")
    if classes is None:
        seen: list[str] = []
        for v in [*names, *m, *r]:
            if v not in seen and (v in m or v in r):
                seen.append(v)
        cls = seen
    else:
        cls = [str(c) for c in classes]
        missing = sorted((set(m) | set(r)) - set(cls))
        if missing:
            raise InputError(f"classes {missing} occur in the sample but not in the class list {cls}")
    strata_are_map = all(si == mi for si, mi in zip(s, m, strict=True)) and set(names) <= set(cls)
    method = ("stratified estimator, strata = map classes (Olofsson et al. 2014)" if strata_are_map
              else "Stehman (2014) estimator, strata differ from the map classes")
    if total_area is None:
        total_area = float(sizes.sum()) if unit_area is None else None
    if total_area is None:
        raise InputError("give total_area when the units have areas (the population's area in area_unit)")
    if mapped_area is None:
        if not strata_are_map:
            raise InputError("give mapped_area (the map's area of every class) when the strata are not the map classes")
        mapped_area = {k: float(total_area * sizes[i] / sizes.sum()) for i, k in enumerate(names)}
    mapped_area = {c: float(mapped_area.get(c, 0.0)) for c in cls}

    mi = np.array([cls.index(v) for v in m])
    ri = np.array([cls.index(v) for v in r])

    def ratio(y: np.ndarray, x: np.ndarray) -> Estimate:
        return _ratio(y, x, h, names, sizes, fpc, z)

    k = len(cls)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (mi, ri), 1)
    props = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                props[i, j] = ratio(a * ((mi == i) & (ri == j)), a).value or 0.0
    overall = ratio(a * (mi == ri), a)
    users, producers, area_p, area = {}, {}, {}, {}
    for c, name in enumerate(cls):
        hit = a * ((mi == c) & (ri == c))
        users[name] = ratio(hit, a * (mi == c))
        producers[name] = ratio(hit, a * (ri == c))
        area_p[name] = ratio(a * (ri == c), a)
        area[name] = area_p[name].scaled(total_area)
    grp: dict[str, Estimate] = {}
    for gname, members in (groups or {}).items():
        sel = np.isin(np.array(r), np.array([str(x) for x in members]))
        grp[gname] = ratio(a * sel, a).scaled(total_area)
    for name in cls:
        if users[name].value is None and mapped_area.get(name, 0) > 0:
            warnings.append(f"no sample plot is mapped as {name}: its user's accuracy is not estimated")
    return Assessment(cls, names, method, n_by, dict(zip(names, sizes.tolist(), strict=True)), counts, props, overall,
                      users, producers, area_p, area, mapped_area, float(total_area), area_unit, z, fpc, grp, warnings)


def _pm(e: Estimate, fmt: str) -> str:
    if e.value is None:
        return "—"
    return fmt.format(e.value) + ("" if e.ci is None else " ± " + fmt.format(e.ci))


def assessment_markdown(acc: Assessment, title: str = "How sure are these hectares?") -> str:
    """The assessment as Markdown: error matrices, accuracies and areas as ``value ± 95 % interval``."""
    cls = acc.classes
    u = acc.area_unit
    lines = [f"# {title}", "", f"{acc.method}; {acc.n} labelled plots; 95 % confidence intervals (± {acc.z:.2f} standard errors)"
             + ("; finite-population correction applied." if acc.fpc else "."), ""]
    lines += ["## Error-adjusted area", "", f"| class | mapped ({u}) | estimated ({u}) | 95 % interval ({u}) |", "|---|---:|---:|---:|"]
    for c in cls:
        e = acc.area[c]
        lo, hi = e.lower, e.upper
        rng = "—" if lo is None or hi is None else f"{max(lo, 0.0):,.1f} – {hi:,.1f}"
        lines.append(f"| {c} | {acc.mapped_area.get(c, 0.0):,.1f} | {_pm(e, '{:,.1f}')} | {rng} |")
    for g, e in acc.groups.items():
        lines.append(f"| **{g}** | | {_pm(e, '{:,.1f}')} | |")
    lines += ["", "## Accuracy", "", f"Overall accuracy: {_pm(acc.overall, '{:.3f}')}", "",
              "| class | user's accuracy | producer's accuracy |", "|---|---:|---:|"]
    for c in cls:
        lines.append(f"| {c} | {_pm(acc.users[c], '{:.3f}')} | {_pm(acc.producers[c], '{:.3f}')} |")
    head = "| map \\ reference | " + " | ".join(cls) + " | total |"
    sep = "|---|" + "---:|" * (len(cls) + 1)
    lines += ["", "## Error matrix (sample counts)", "", head, sep]
    for i, c in enumerate(cls):
        lines.append(f"| {c} | " + " | ".join(str(int(v)) for v in acc.counts[i]) + f" | {int(acc.counts[i].sum())} |")
    lines += ["", "## Error matrix (estimated proportions of area)", "", head, sep]
    for i, c in enumerate(cls):
        lines.append(f"| {c} | " + " | ".join(f"{v:.4f}" for v in acc.proportions[i]) + f" | {acc.proportions[i].sum():.4f} |")
    lines.append("| total | " + " | ".join(f"{v:.4f}" for v in acc.proportions.sum(axis=0)) + f" | {acc.proportions.sum():.4f} |")
    for w in acc.warnings:
        lines += ["", f"**Warning:** {w}"]
    return "\n".join(lines) + "\n"
