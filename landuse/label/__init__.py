"""Label plots in a browser page: the plots worth asking about, their imagery, labels into a dataset.

``landuse.label(run, dataset)`` (also ``label_page``) chooses the plots (:mod:`landuse.label.selection`), opens a
:class:`LabelSession` (:mod:`landuse.label.session`: images, the dataset folder, resume) and
either serves the page (:mod:`landuse.label.server`, FastAPI on 127.0.0.1) or writes it as one
self-contained HTML file whose exported labels file :func:`import_labels` turns into the dataset.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landuse.errors import InputError, OutputExistsError
from landuse.fileio import read_json
from landuse.label.selection import (
    STRATEGIES,
    Pick,
    RunPlots,
    Selection,
    read_run_plots,
    select_plots,
)
from landuse.label.session import DEFAULT_CONTEXT, INDEX, INDEX_FIELDS, LabelItem, LabelSession

__all__ = [
    "DEFAULT_CONTEXT", "INDEX", "INDEX_FIELDS", "STRATEGIES", "ImportResult", "LabelItem", "LabelResult", "LabelSession",
    "LabelSource", "Pick", "RunPlots", "Selection", "import_labels", "label", "label_page", "read_run_plots", "resolve_source",
    "select_plots", "serve_session", "write_label_html",
]
EXPORT_KIND = "landuse-labels"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class LabelResult:
    """Where a labelling session stands: the dataset, the page and the answers so far."""

    dataset: Path
    session_id: str
    total: int
    labels: dict[str, int]  # labels given per tag
    skipped: int
    url: str | None = None  # the served page (the key in its #fragment)
    html: Path | None = None  # the written page

    @property
    def remaining(self) -> int:
        return self.total - sum(self.labels.values()) - self.skipped

    def describe(self) -> str:
        given = ", ".join(f"{t} {k}" for t, k in sorted(self.labels.items())) or "none yet"
        return f"{sum(self.labels.values())} labels ({given}), {self.skipped} skipped, {self.remaining} of {self.total} to go; dataset {self.dataset}"


def result_of(session: LabelSession, url: str | None = None, html: Path | None = None) -> LabelResult:
    state = session.state()
    counts: dict[str, int] = {}
    for tag in state["labels"].values():
        counts[tag] = counts.get(tag, 0) + 1
    return LabelResult(session.dataset, session.session_id, state["total"], counts, len(state["skipped"]), url, html)


def export_header(session: LabelSession) -> dict[str, Any]:
    """What a labels file needs to rebuild its session (runs, plots, options)."""
    plot_ids = list(dict.fromkeys(it.plot_id for it in session.items))
    return {
        "kind": EXPORT_KIND, "version": 1, "session": session.session_id,
        "runs": [str(r.path.resolve()) for r in session.runs], "plot_ids": plot_ids, "blind": session.blind,
        "tags": session.tags, "context": session.context, "chip_size": session.chip_size,
    }


def write_label_html(session: LabelSession, path: str | Path, overwrite: bool = False) -> Path:
    """Write the page with every image inlined; "Export labels" saves a file for :func:`import_labels`."""
    from landuse.label.page import render_page
    from landuse.store import atomic_write_bytes

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass `overwrite=True` or choose another `html`")
    views = [
        ["data:image/jpeg;base64," + base64.b64encode(session.view(i, k)).decode() for k in range(len(session.runs))]
        if session.items[i].run_index == 0 else None
        for i in range(len(session.items))
    ]
    for i, it in enumerate(session.items):  # the second period's question shows the same two images
        if views[i] is None:
            views[i] = next(views[j] for j in range(i, -1, -1) if views[j] is not None and session.items[j].plot_id == it.plot_id)
    data = {**session.page_data(), "views": views, "export": export_header(session)}
    data["state"] = None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, render_page({"mode": "static", "data": data}).encode("utf-8"))
    return path


def serve_session(session: LabelSession, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  key: str | None = None, config_path: str | Path | None = None) -> tuple[Any, str]:
    """Start the label server in the background: ``(server, url)``; ``server.stop()`` ends it.

    The key is ``key``, else ``$LANDUSE_SERVE_KEY`` / the serve config's (as ``landuse serve``),
    else a new random one; the url carries it in its ``#key=`` fragment."""
    from landuse.label.server import LabelServer, create_label_app
    from landuse.serve import resolve_key

    if key is None:
        key, _ = resolve_key(config_path)
    server = LabelServer(create_label_app(session, key), host=host, port=port).start()
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{server.port}/#key={key}"


@dataclass(frozen=True)
class LabelSource:
    """What to label, resolved from a run directory or an assessment sample folder."""

    run: Path
    other_run: Path | None
    plot_ids: list[str] | None
    blind: bool
    dataset: Path | None  # the default dataset folder (a sample's ``labels/``)


def resolve_source(path: str | Path, seed: int = 0) -> LabelSource:
    """A run directory labels its own plots (the model's guess shown); a sample folder of
    ``landuse assess design`` (``design.json`` + ``sample.csv``) labels exactly its plots, blind, in
    a shuffled order (so strata do not show), both periods side by side for a change sample,
    into ``SAMPLE/labels``."""
    import random

    path = Path(path)
    if not (path / "design.json").exists():
        return LabelSource(path, None, None, False, None)
    from landuse.assess.sample import SampleDesign

    design = SampleDesign.open(path)
    if not design.runs:
        raise InputError(f"{path / 'design.json'} names no run; draw the sample again from a run or a change folder")
    ids = list(design.plot_ids)
    random.Random(f"{design.seed}:{seed}").shuffle(ids)
    runs = [Path(r) for r in design.runs]
    return LabelSource(runs[0], runs[-1] if design.kind == "change" and len(runs) > 1 else None, ids, True, path / "labels")


def label(
    run: str | Path | Any,
    dataset: str | Path | None = None,
    *,
    other_run: str | Path | None = None,
    change: str | Path | Any | None = None,
    plot_ids: Sequence[str] | None = None,
    n: int = 40,
    strategy: str = "mix",
    blind: bool | None = None,
    extra_tags: Sequence[str] = (),
    context: float = DEFAULT_CONTEXT,
    chip_size: int | None = None,
    html: str | Path | None = None,
    overwrite: bool = False,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    key: str | None = None,
    config_path: str | Path | None = None,
    on_ready: Callable[[str], None] | None = None,
    block: bool = True,
) -> LabelResult:
    """Label plots of ``run`` into ``dataset``: serve the page (until interrupted; ``on_ready`` gets
    its url), or with ``html`` write it as one file.

    ``run`` is a run directory (or a :class:`~landuse.results.Run`), or a sample folder of ``landuse assess design`` (see
    :func:`resolve_source`: its plots, blind, into ``SAMPLE/labels`` unless ``dataset`` is given).
    ``other_run`` (a run of another period on the same grid) asks about each plot in both periods
    with the two images side by side; ``change`` (a ``landuse change`` output) feeds the
    ``changed`` strategy; ``plot_ids`` replaces the strategy with a list; ``blind`` hides the
    model's guess (reference labelling for an accuracy assessment)."""
    run = getattr(run, "path", run)  # a Run / Change result stands for its folder
    change = getattr(change, "path", change)
    other_run = getattr(other_run, "path", other_run)
    src = resolve_source(run)
    dataset = dataset if dataset is not None else src.dataset
    if dataset is None:
        raise InputError(f"give the dataset folder the labels of {run} go to (`out` DATASET)")
    session = LabelSession.open(src.run, dataset, other_run=other_run if other_run is not None else src.other_run,
                                change_dir=change, plot_ids=plot_ids if plot_ids is not None else src.plot_ids, n=n,
                                strategy=strategy, blind=src.blind if blind is None else blind,
                                extra_tags=extra_tags, context=context, chip_size=chip_size)
    if html is not None:
        return result_of(session, html=write_label_html(session, html, overwrite=overwrite))
    server, url = serve_session(session, host=host, port=port, key=key, config_path=config_path)
    if on_ready is not None:
        on_ready(url)
    if not block:
        return result_of(session, url=url)
    try:
        while server._thread is not None and server._thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return result_of(session, url=url)


label_page = label  # the name the contract used before the API existed


@dataclass(frozen=True)
class ImportResult:
    dataset: Path
    added: int
    skipped: int
    result: LabelResult


def import_labels(labels_file: str | Path, dataset: str | Path) -> ImportResult:
    """Write the labels of a file exported by the written page into ``dataset`` (chips read from
    the runs' imagery, as the served page would have written them)."""
    labels_file = Path(labels_file)
    doc = read_json(labels_file, "export it from the page (Export labels)")
    if not isinstance(doc, dict) or doc.get("kind") != EXPORT_KIND or not doc.get("runs"):
        raise InputError(f"{labels_file} is not a labels file exported by `landuse label --html`")
    runs = doc["runs"]
    session = LabelSession.open(runs[0], dataset, other_run=runs[1] if len(runs) > 1 else None,
                                plot_ids=doc.get("plot_ids") or [], blind=bool(doc.get("blind")),
                                extra_tags=[t for t in doc.get("tags") or [] if t not in ("unknown",)
                                            and t not in read_run_plots(runs[0]).labels],
                                context=float(doc.get("context", DEFAULT_CONTEXT)), chip_size=doc.get("chip_size"))
    known = {it.key for it in session.items}
    added = 0
    for rec in doc.get("labels") or []:
        k = str(rec.get("key"))
        if k not in known:
            raise InputError(f"{labels_file}: {k!r} is not a plot of the exported session; export it from the page again")
        session.label(k, str(rec.get("label")), labelled_at=rec.get("labelled_at") or None)
        added += 1
    skipped = 0
    for k in doc.get("skipped") or []:
        if k in known:
            session.skip(str(k))
            skipped += 1
    return ImportResult(session.dataset, added, skipped, result_of(session))
