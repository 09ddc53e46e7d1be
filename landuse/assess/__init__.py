"""Defensible numbers: reference samples, error-adjusted areas with confidence intervals, and
intensity analysis of a series of periods.

* :mod:`landuse.assess.design` — sample size and allocation formulas, the stratified draw;
* :mod:`landuse.assess.estimate` — the stratified / Stehman (2014) estimators (:func:`assess`);
* :mod:`landuse.assess.sample` — a sample folder on disk: :func:`design_sample`, :func:`estimate_sample`;
* :mod:`landuse.assess.intensity` — Aldwaik & Pontius (2012) intensity analysis.
"""

from landuse.assess.design import Stratum, allocate, draw, sample_size_area, sample_size_overall
from landuse.assess.estimate import Assessment, Estimate, assess, assessment_markdown
from landuse.assess.intensity import IntensityAnalysis, intensity_analysis, intensity_markdown
from landuse.assess.sample import SampleDesign, SampleEstimate, design_sample, estimate_sample

# the API names (``landuse.assess_design`` / ``landuse.assess_estimate``)
assess_design = design_sample
assess_estimate = estimate_sample

__all__ = [
    "Assessment",
    "Estimate",
    "IntensityAnalysis",
    "SampleDesign",
    "SampleEstimate",
    "Stratum",
    "allocate",
    "assess",
    "assess_design",
    "assess_estimate",
    "assessment_markdown",
    "design_sample",
    "draw",
    "estimate_sample",
    "intensity_analysis",
    "intensity_markdown",
    "sample_size_area",
    "sample_size_overall",
]
