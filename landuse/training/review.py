"""The review loop: export the plots most worth a human look, then merge the reviewed chips.

``export_review(run_dir, out)`` writes::

    REVIEW_DIR/<predicted tag>/<plot>.png   the chips, filed under their predicted tag
    REVIEW_DIR/<every other tag>/           empty folders, plus _unsure/
    REVIEW_DIR/review.json                  run, grid, tags, strategy, and per chip: plot id,
                                            predicted tag, probabilities, score
    REVIEW_DIR/README.txt                   what the reviewer does

The reviewer moves each chip into its true tag's folder (or ``_unsure``).
``merge_review(review_dir, dataset_dir)`` then copies every chip found in a tag folder into the
dataset's folder of that tag (a chip of the same plot under another tag is moved: the reviewer
wins), and records it in the dataset's ``index.geojson`` (origin ``review``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landuse.errors import DatasetError, OutputExistsError
from landuse.label.selection import UNKNOWN, read_run_plots, select_plots

UNSURE = "_unsure"
README = """Review: move each chip into the folder of its TRUE tag (or into _unsure when you cannot tell).
Chips are filed under the tag the model predicted; review.json lists the probabilities.
Then add the reviewed chips to a dataset:  landuse dataset --merge {dir} --out DATASET_DIR
"""


@dataclass
class ReviewResult:
    out: Path
    chips: int
    per_tag: dict[str, int]
    strategy: str

    def describe(self) -> str:
        """What was written and what to do next, for the terminal."""
        per = ", ".join(f"{t} {k}" for t, k in self.per_tag.items())
        return (f"wrote {self.chips} chips ({self.strategy}) to {self.out}/: {per}; folders for every tag and {UNSURE}\n"
                f"move each chip into its true tag's folder, then: landuse dataset --merge {self.out} --out DATASET_DIR")


def export_review(
    run_dir: str | Path,
    out: str | Path,
    n: int = 200,
    strategy: str = "least-confident",
    change_dir: str | Path | None = None,
    imagery: list[str] | None = None,
    chip_size: int = 256,
    overwrite: bool = False,
    stretch: str | Sequence[float] | None = None,
) -> ReviewResult:
    """Write the ``n`` plots most worth a look (see the module doc; the strategies of
    :func:`landuse.label.selection.select_plots`) to ``out`` (``stretch``: as ``landuse classify
    --stretch``; default the stretch the run recorded)."""
    from landuse import __version__
    from landuse.label.session import run_scene
    from landuse.tiler import encode_png, plot_file_name

    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"review folder {out} exists; pass `overwrite=True` or choose another `out`")
    run = read_run_plots(run_dir)
    selection = select_plots(run, n=n, strategy=strategy, change_dir=change_dir)
    scene = run_scene(run, imagery=imagery, hint="pass it with `imagery`", stretch=stretch)
    imagery = [f.path for f in scene.files]
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    per_tag = {t: 0 for t in run.labels}
    items = []
    try:
        for t in [*run.labels, UNSURE]:
            (tmp / t).mkdir()
        for pick in selection.picks:
            r, c = pick.row, pick.col
            rgb, _ = scene.read_plot(run.grid, r, c, chip_size)
            i = run.index_of(r, c)
            assert i is not None  # picks are plots of the run
            guess = run.guess(i)
            tag = guess["predicted"]
            name = f"{plot_file_name(pick.plot_id)}.png"
            (tmp / (UNSURE if tag == UNKNOWN else tag) / name).write_bytes(encode_png(rgb))
            per_tag[tag] = per_tag.get(tag, 0) + 1
            items.append({
                "plot_id": pick.plot_id, "row": r, "col": c, "file": name, "predicted": tag, "reason": pick.reason,
                "score": pick.score, "probs": guess["probs"], "unknown_score": guess["unknown_score"],
                "valid_fraction": round(float(run.valid[i]), 4),
            })
        doc = {"toolkit_version": __version__, "kind": "review", "run": str(run.path), "period": run.period,
               "grid": run.grid.to_dict(), "labels": run.labels, "strategy": strategy,
               "change": str(change_dir) if change_dir else None, "imagery": imagery, "chip_size": chip_size,
               "model": run.manifest.get("model"), "items": items}
        (tmp / "review.json").write_text(json.dumps(doc, indent=1) + "\n")
        (tmp / "README.txt").write_text(README.format(dir=out))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return ReviewResult(out, len(items), per_tag, selection.strategy)


@dataclass
class MergeResult:
    added: dict[str, int]  # chips per tag newly in the dataset
    relabelled: int  # chips moved from another tag of the dataset
    unchanged: int  # chips already in the dataset under the reviewed tag
    unsure: int
    not_listed: list[str]  # chips not in review.json (merged, without plot metadata)

    def describe(self, dataset: Path) -> str:
        added = ", ".join(f"{t} {n}" for t, n in self.added.items() if n) or "none"
        text = (f"merged into {dataset}/: added {added}; relabelled {self.relabelled}, already there {self.unchanged}, "
                f"left in {UNSURE} {self.unsure}")
        if self.not_listed:
            text += f"; {len(self.not_listed)} chips not in review.json (merged without plot data), e.g. {self.not_listed[0]}"
        return text


def merge_review(review_dir: str | Path, dataset_dir: str | Path) -> MergeResult:
    """Add the chips a reviewer filed under tag folders of ``review_dir`` to ``dataset_dir``."""
    import shapely

    from landuse.grid import PlotGrid
    from landuse.training.dataset import is_image_file

    review_dir, dataset_dir = Path(review_dir), Path(dataset_dir)
    try:
        doc = json.loads((review_dir / "review.json").read_text())
    except OSError:
        raise DatasetError(f"{review_dir} has no review.json; pass a folder written by `landuse review`") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{review_dir / 'review.json'} is not valid JSON ({exc}); export the review again") from None
    by_file = {it["file"]: it for it in doc.get("items", [])}
    grid = PlotGrid.from_dict(doc["grid"])
    dataset_dir.mkdir(parents=True, exist_ok=True)
    index_path = dataset_dir / "index.geojson"
    index: dict[str, Any] = json.loads(index_path.read_text()) if index_path.exists() else {"type": "FeatureCollection", "features": []}
    feats = {f["properties"].get("file", "").split("/")[-1]: f for f in index["features"]}
    res = MergeResult({}, 0, 0, 0, [])
    for tag_dir in sorted(p for p in review_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        chips = sorted(f for f in tag_dir.iterdir() if f.is_file() and is_image_file(f))
        if tag_dir.name == UNSURE:
            res.unsure += len(chips)
            continue
        for chip in chips:
            tag = tag_dir.name
            target = dataset_dir / tag / chip.name
            elsewhere = [p for p in dataset_dir.glob(f"*/{chip.name}") if p.parent.name != tag]
            if target.exists() and not elsewhere:
                res.unchanged += 1
                continue
            target.parent.mkdir(exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(chip, tmp)
            os.replace(tmp, target)
            for old in elsewhere:
                old.unlink()
            if elsewhere:
                res.relabelled += 1
            else:
                res.added[tag] = res.added.get(tag, 0) + 1
            item = by_file.get(chip.name)
            props = {"file": f"{tag}/{chip.name}", "label": tag, "origin": "review", "review": str(review_dir)}
            geom = None
            if item is None:
                res.not_listed.append(str(chip.relative_to(review_dir)))
            else:
                props.update(plot_id=item["plot_id"], row=item["row"], col=item["col"], predicted=item["predicted"],
                             **{f"prob_{t}": p for t, p in item["probs"].items()})
                poly = grid.footprint(item["row"], item["col"], to_crs="EPSG:4326")
                geom = json.loads(shapely.to_geojson(poly))
            feats[chip.name] = {"type": "Feature", "geometry": geom, "properties": props}
    index["features"] = list(feats.values())
    tmp = index_path.with_name(f".{index_path.name}.tmp")
    tmp.write_text(json.dumps(index) + "\n")
    os.replace(tmp, index_path)
    return res
