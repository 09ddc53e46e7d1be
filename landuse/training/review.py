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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landuse.errors import DatasetError, InputError, OutputExistsError

UNSURE = "_unsure"
STRATEGIES = ("least-confident", "changed")
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


def _select_least_confident(run, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(run.classes >= 0)
    probs = run.probs[:, rows, cols]
    top2 = -np.sort(-probs, axis=0)[:2]
    score = top2[0]  # winning probability: lowest first
    margin = top2[0] - (top2[1] if len(top2) > 1 else 0.0)
    order = np.lexsort((cols, rows, margin, score))[:n]
    return rows[order], cols[order], score[order]


def _select_changed(run, change_dir: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = change_dir / "change.geojson"
    try:
        doc = json.loads(path.read_text())
    except OSError:
        raise InputError(f"{path} not found; run `landuse change RUN_A RUN_B --out {change_dir}` first") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); rerun landuse change with --overwrite") from None
    from landuse.grid import PlotGrid

    meta = doc.get("landuse") or {}
    if "grid" in meta:
        run.grid.require_equal(PlotGrid.from_dict(meta["grid"]), what=f"run {run.path} and change {change_dir}")
    recs = []
    for f in doc.get("features", []):
        p = f["properties"]
        r, c = run.grid.parse_plot_id(p["plot_id"])  # GridError when the change is of another grid
        recs.append((r, c, min(p["prob_from"], p["prob_to"])))
    recs = [r for r in recs if run.classes[r[0], r[1]] >= 0]
    recs.sort(key=lambda r: (r[2], r[0], r[1]))  # least confident change first
    recs = recs[:n]
    if not recs:
        raise InputError(f"{path} lists no changed plot classified in {run.path}; nothing to review")
    a = np.array(recs, dtype=float)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2]


def export_review(
    run_dir: str | Path,
    out: str | Path,
    n: int = 200,
    strategy: str = "least-confident",
    change_dir: str | Path | None = None,
    imagery: list[str] | None = None,
    chip_size: int = 256,
    overwrite: bool = False,
) -> ReviewResult:
    """Write the ``n`` plots most worth a look (see the module doc) to ``out``."""
    from landuse import __version__
    from landuse.change import load_run
    from landuse.imagery import Scene
    from landuse.tiler import encode_png, plot_file_name

    if strategy not in STRATEGIES:
        raise InputError(f"--strategy {strategy!r} must be one of {', '.join(STRATEGIES)}")
    if n < 1:
        raise InputError(f"--n {n} must be at least 1")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"review folder {out} exists; pass --overwrite or choose another --out")
    run = load_run(run_dir)
    if strategy == "changed":
        if change_dir is None:
            raise InputError("--strategy changed needs --change CHANGE_DIR (the output of landuse change)")
        rows, cols, score = _select_changed(run, Path(change_dir), n)
    else:
        rows, cols, score = _select_least_confident(run, n)
    if rows.size == 0:
        raise InputError(f"run {run.path} has no classified plot; nothing to review")
    if not imagery:
        imagery = [str(i["path"]) for i in run.manifest.get("inputs") or [] if isinstance(i, dict) and "path" in i]
        missing = [p for p in imagery if "://" not in p and not Path(p).exists()]
        if not imagery or missing:
            raise InputError(
                f"the imagery of run {run.path} is {'not recorded' if not imagery else 'missing: ' + missing[0]}; "
                "pass it with --imagery"
            )
    scene = Scene.open(imagery)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    per_tag = {t: 0 for t in run.labels}
    items = []
    try:
        for t in [*run.labels, UNSURE]:
            (tmp / t).mkdir()
        for r, c, s in zip(rows.tolist(), cols.tolist(), score.tolist(), strict=True):
            rgb, _ = scene.read_plot(run.grid, r, c, chip_size)
            pid = run.grid.plot_id(r, c)
            tag = run.labels[int(run.classes[r, c])]
            name = f"{plot_file_name(pid)}.png"
            (tmp / tag / name).write_bytes(encode_png(rgb))
            per_tag[tag] += 1
            items.append({
                "plot_id": pid, "row": r, "col": c, "file": name, "predicted": tag, "score": round(float(s), 4),
                "probs": {t: round(float(run.probs[k, r, c]), 4) for k, t in enumerate(run.labels)},
                "valid_fraction": round(float(run.valid[r, c]), 4),
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
    return ReviewResult(out, len(items), per_tag, strategy)


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
    index = json.loads(index_path.read_text()) if index_path.exists() else {"type": "FeatureCollection", "features": []}
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
