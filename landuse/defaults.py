"""The toolkit's defaults, defined once: the API, the CLI, the workflow files and the pipeline
all read them from here (never a literal of their own)."""

from __future__ import annotations

PLOT_SIZE_M = 224.0
"""Plot side in metres (also in feet-based CRSs: the grid converts)."""

MIN_VALID = 0.9
"""Smallest valid-pixel fraction of a plot for it to be classified (or tiled)."""

MODEL = "default"
"""The model spec meaning the bundled default model."""

BACKEND = "onnx"
"""Local ONNX inference; the other backend is ``customvision`` (the cloud endpoint)."""

SCHEDULER = "auto"
"""Threads in the calling process on a machine of up to 4 cores, else a Dask LocalCluster
(one process per core); see ``landuse.pipeline.resolve_scheduler``."""

CHUNK_PLOTS = 256
"""Plots per Dask task (a contiguous block of the grid)."""

BATCH_SIZE = 8
"""Plots per model call."""

THRESHOLD = 0.5
"""Probability a tag needs to count as predicted (multilabel models, evaluation)."""

MIN_CONFIDENCE = 0.6
"""A change counts only when both periods' winning probabilities reach this."""

HOTSPOT_BLOCK = 5
"""Hotspot block side in plots."""

DEVELOPED_TAG = "Developed"
"""The tag whose gain is reported as urbanization."""

CV_TIER = "S0"
"""Custom Vision pricing tier assumed when none is given."""

REPORT_BASEMAP = "osm"
"""Basemap of the web map report (``none`` for a fully offline page)."""

THUMBNAIL_PX = 128
"""Side of the before / after imagery thumbnails in the report's popups."""

MAX_THUMBNAILS = 1000
"""At most this many change plots get thumbnails (2 JPEGs of ~6 KB base64 each: keeps the HTML small)."""

ASSESS_TARGET_SE = 0.02
"""Target standard error of overall accuracy a reference sample is sized for (``assess design``)."""

ASSESS_EXPECTED_UA = 0.85
"""User's accuracy expected of every stratum when sizing a reference sample."""

ASSESS_MIN_PER_STRATUM = 20
"""Fewest plots a stratum of a reference sample gets (rare change strata are over-sampled)."""

ASSESS_SAMPLE = "sample"
"""Sample folder of a workflow's ``assess`` step, inside its output folder."""
