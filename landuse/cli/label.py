"""`landuse label RUN_DIR --out DATASET`: label plots in a browser page, straight into a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.label.selection import STRATEGIES


def _read_plot_ids(path: Path) -> list[str]:
    """Plot ids from a text file (one a line) or a CSV / GeoJSON with a ``plot_id`` column."""
    import csv
    import json

    from landuse.errors import InputError

    try:
        text = path.read_text()
    except OSError:
        raise InputError(f"--plots file {path} not found; give a file of plot ids (one a line, or a plot_id column)") from None
    if path.suffix.lower() in (".geojson", ".json"):
        try:
            feats = json.loads(text).get("features") or []
        except (json.JSONDecodeError, AttributeError) as exc:
            raise InputError(f"--plots {path} is not a GeoJSON FeatureCollection ({exc})") from None
        ids = [str(f["properties"]["plot_id"]) for f in feats if (f.get("properties") or {}).get("plot_id")]
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "plot_id" not in rows[0]:
            raise InputError(f"--plots {path} has no plot_id column; add one")
        ids = [r["plot_id"] for r in rows if r.get("plot_id")]
    else:
        ids = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not ids:
        raise InputError(f"--plots {path} lists no plot id")
    return ids


@click.command("label")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Dataset folder the labels go to (DATASET/<tag>/*.png + labels.csv); reopening continues. "
                   "Default for a sample folder: SAMPLE/labels.")
@click.option("--n", "n", type=int, default=40, show_default=True, help="How many plots to ask about.")
@click.option("--strategy", type=click.Choice(list(STRATEGIES)), default="mix", show_default=True,
              help="mix: unknown + changed + least confident + spread across classes and the county.")
@click.option("--change", "change", type=click.Path(path_type=Path), default=None,
              help="Output folder of `landuse change` (its changed plots join the mix).")
@click.option("--other-run", "other_run", type=click.Path(path_type=Path), default=None,
              help="A run of another period on the same grid: ask each plot in both, images side by side.")
@click.option("--plots", "plots", type=click.Path(path_type=Path), default=None,
              help="Ask exactly these plots (plot ids one a line, or a CSV / GeoJSON with plot_id).")
@click.option("--blind/--no-blind", default=None,
              help="Hide the model's guess (reference labelling; the default for a sample folder).")
@click.option("--tag", "tags", multiple=True, help="A tag the model lacks (e.g. --tag Water); repeatable.")
@click.option("--context", type=float, default=0.25, show_default=True,
              help="Imagery shown around the plot, as a share of the plot side on each side.")
@click.option("--html", "html", type=click.Path(path_type=Path), default=None,
              help="Write a self-contained page instead of serving (its Export labels file: --import).")
@click.option("--import", "import_file", type=click.Path(path_type=Path), default=None,
              help="Add the labels file exported from a --html page to --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --html file.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Serve config (TOML, `key = ...`) as for `landuse serve`.")
@click.pass_context
def command(ctx: click.Context, run_dir: Path | None, out: Path | None, n: int, strategy: str, change: Path | None,
            other_run: Path | None, plots: Path | None, blind: bool | None, tags: tuple[str, ...], context: float,
            html: Path | None, import_file: Path | None, overwrite: bool, host: str, port: int,
            config_path: str | None) -> None:
    """Ask about the plots of RUN_DIR worth a person's look in a browser page; every answer is
    written at once into --out in the layout `landuse train` reads.

    RUN_DIR may be a sample folder of `landuse assess design`: its plots are asked, blind, in a
    shuffled order (both periods side by side for a change sample), into SAMPLE/labels.

    The key comes from $LANDUSE_SERVE_KEY or the serve config (as `landuse serve`), else a new one;
    open the printed address (the key travels in its #fragment)."""
    from landuse.errors import InputError
    from landuse.label import import_labels, label_page
    from landuse.serve import is_loopback

    quiet = bool((ctx.obj or {}).get("quiet"))
    if import_file is not None:
        if out is None:
            raise InputError("--import needs --out DATASET (the folder the labels go to)")
        res = import_labels(import_file, out)
        if not quiet:
            click.echo(f"imported {res.added} labels ({res.skipped} skipped) into {res.dataset}/: {res.result.describe()}")
        return
    if run_dir is None:
        raise InputError("give RUN_DIR (a finished `landuse classify` run), or --import LABELS_FILE")
    if not is_loopback(host):
        click.echo(f"landuse label: warning: binding {host} exposes the page (and the imagery) beyond this machine", err=True)

    def ready(url: str) -> None:
        click.echo(f"landuse label: open {url}  (Ctrl-C to stop; every answer is already saved)", err=True)

    page = label_page(run_dir, out, other_run=other_run, change=change,
                     plot_ids=_read_plot_ids(plots) if plots else None, n=n, strategy=strategy, blind=blind,
                     extra_tags=tags, context=context, html=html, overwrite=overwrite, host=host, port=port,
                     config_path=config_path, on_ready=ready)
    if not quiet:
        if page.html is not None:
            click.echo(f"wrote {page.html} ({page.total} questions); label in any browser, Export labels, then: "
                       f"landuse label --import labels-{page.session_id}.json --out {page.dataset}")
        else:
            click.echo(page.describe())
