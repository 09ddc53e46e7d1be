"""Write the four notebooks on the Python API and execute them in place, so they are committed with outputs.

Usage (from the repository root): ``.venv/bin/python notebooks/build.py . [NAME ...]`` (only the
named notebooks, e.g. ``02_change_between_years``; default all). Outputs go to a temporary folder;
notebook 02 is executed on the bundled sample county, the job ``workflows/sample_county.yaml``
describes (tests/test_api.py checks its outputs are byte-identical to the workflow's and the CLI's).
"""

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(sys.argv[1])
ONLY = set(sys.argv[2:])  # notebook names to build (default: all)

SETUP = '''NOTEBOOK = "{name}"

import os
from pathlib import Path

import pandas as pd

import landuse as lu

REPO = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
OUT = Path(os.environ.get("LANDUSE_NB_OUT", REPO / "notebook_out")) / NOTEBOOK
OUT.mkdir(parents=True, exist_ok=True)
SAMPLES = REPO / "sample_rasters"
SHARED = Path(os.environ.get("LANDUSE_NB_SHARED", REPO.parent / "shared" / "data"))  # real data, where present
print("landuse", lu.__version__, "- outputs in", OUT.name)'''


def nb(name: str, cells: list) -> None:
    if ONLY and name not in ONLY:
        return
    book = new_notebook(cells=[c if not isinstance(c, str) else new_code_cell(c) for c in cells])
    book.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}}
    for c in book.cells:
        c.pop("id", None)
    nbformat.write(book, ROOT / "notebooks" / f"{name}.ipynb", version=4)


md = new_markdown_cell

MAP_HELPER = '''import matplotlib.pyplot as plt
from matplotlib.patches import Patch
from landuse.report.palette import class_colors

def plot_classes(run, ax, title=None):
    """The run's plots coloured by class (white: not classified)."""
    colors = class_colors(run.labels)
    run.plots.plot(ax=ax, color=run.plots["label"].map(colors).fillna("#ffffff"), edgecolor="#444", linewidth=0.3)
    ax.legend(handles=[Patch(color=colors[t], label=t) for t in run.labels], loc="lower left", fontsize=8)
    ax.set_title(title or f"{run.period}"); ax.set_axis_off()'''

nb("01_quickstart", [
    md("# 01 — Quickstart: plot grid, tiles, classify the sample county\n\n"
       "The sample county (`sample_rasters/`) is synthetic NAIP-like imagery at 1 m in UTM 11N, two periods, with "
       "known truth. This notebook builds the plot grid, looks at which plots the imagery covers, classifies one "
       "period with the bundled model and shows the result — all through the Python API (`import landuse as lu`), "
       "the same functions the `landuse` commands call."),
    SETUP.format(name="01_quickstart"),
    md("## The plot grid\n\nA plot grid is a raster whose pixels are 224 m plots, anchored to the CRS origin: plot ids "
       "mean the same ground in every year. `lu.grid` builds it and writes `grid.json`."),
    '''g = lu.grid([SAMPLES / "2016.tif", SAMPLES / "2022.tif"], out=OUT / "grid.json", overwrite=True)
print(g.describe())
print("first plot:", g.grid.plot_id(0, 0), "bounds", g.grid.plot_bounds(0, 0))
assert g.grid.plot_size_m == 224 and lu.PlotGrid.load(g.path) == g.grid''',
    md("## Tiles: which plots the imagery covers\n\n`lu.tile` writes one chip per plot with enough valid imagery, and "
       "an index GeoJSON with every plot's valid fraction and status."),
    '''t = lu.tile([SAMPLES / "2016.tif"], OUT / "tiles", grid=g.path, overwrite=True)
print(t.describe().splitlines()[0])
import geopandas as gpd
index = gpd.read_file(t.index_path)
index[["plot_id", "valid_fraction", "status", "reason"]].head()''',
    md("## Classify the period\n\n`lu.classify` reads each plot through the imagery module, classifies it with the "
       "default model and writes a resumable run directory; it returns a `Run`, whose `.plots` is the GeoDataFrame "
       "`plots.parquet` holds and whose `.summary` is the typed `summary.json`."),
    '''run = lu.classify([SAMPLES / "2016.tif"], OUT / "run_2016", period="2016", grid=g.path,
                  options=lu.ClassifyOptions(scheduler="threads"), overwrite=True)
print(run.summary.plots)
pd.DataFrame({t: vars(c) for t, c in run.summary.classes.items()}).T''',
    '''print("plots by status:", run.plots["status"].value_counts().to_dict())
run.plots.loc[run.plots["status"].isin(["classified", "unknown"]),
              ["plot_id", "status", "label", "unknown_score", *[f"prob_{t}" for t in run.labels]]].head(8).round(3)''',
    md("## How good is it? Compare with the sample's truth"),
    '''truth = gpd.read_file(SAMPLES / "truth.geojson")[["plot_id", "class_2016"]]
m = run.plots.merge(truth, on="plot_id")
m = m[m["status"] == "classified"]
print(f"{len(m)} classified plots, {(m['label'] == m['class_2016']).mean():.0%} agree with the truth")
pd.crosstab(m["class_2016"], m["label"], rownames=["truth"], colnames=["predicted"])''',
    md("## The map\n\nThe classified plots, coloured by class (a static matplotlib map; `lu.report` writes the interactive web map, see notebook 02)."),
    MAP_HELPER + '''

fig, ax = plt.subplots(figsize=(6, 4.5))
plot_classes(run, ax, "2016, default model")''',
])

nb("02_change_between_years", [
    md("# 02 — Change between years\n\nTwo periods on one plot grid: classify both, compare them (transition matrix "
       "in hectares, gains and losses, urbanization) and write the interactive report, with `lu.classify`, "
       "`lu.change` and `lu.report`. Uses the real North Dakota NAIP pair (2010 and 2018) when the shared test data "
       "is beside the repository, else the bundled sample county (as committed here)."),
    SETUP.format(name="02_change_between_years"),
    '''nd = SHARED / "rasters" / "naip_nd_timeseries"
if nd.exists():  # run name: (period, imagery)
    periods = {"2010": ("2010-06-29", sorted(nd.glob("*2010*.tif"))), "2018": ("2018-07-16", sorted(nd.glob("*2018*.tif")))}
else:  # the sample county, the job workflows/sample_county.yaml describes
    periods = {"2016": ("2016-06-15", [SAMPLES / "2016.tif"]), "2022": ("2022-06-15", [SAMPLES / "2022.tif"])}
g = lu.grid([f for _, files in periods.values() for f in files], out=OUT / "grid.json", overwrite=True)
opts = lu.ClassifyOptions(scheduler="threads")
runs = [lu.classify(files, OUT / "runs" / name, period=period, grid=g.path, options=opts, overwrite=True)
        for name, (period, files) in periods.items()]
print(g.describe())
[(r.period, r.summary.plots.classified) for r in runs]''',
    md("## Compare the two runs\n\n`lu.change` returns a `Change`: `.matrix` is the transition matrix in hectares "
       "(rows: class in the first period, columns: in the second), `.transitions` the long table, `.summary` the "
       "typed `summary.json`."),
    '''chg = lu.change(runs[0], runs[1], OUT / "change", options=lu.ChangeOptions(min_confidence=0.6), overwrite=True)
print(chg.describe())
chg.matrix.round(1)''',
    '''chg.transitions''',
    md("## Gains, losses and urbanization"),
    '''s = chg.summary.raw
stats = pd.DataFrame(s["classes"]).T[["area_a", "area_b", "gain", "loss", "net", "swap", "linear_ha_per_year"]]
u = chg.urbanization
print(f"urbanization: {u.total_ha:.1f} ha became {u.tag};", {k: round(v, 1) for k, v in u.by_source_ha.items()})
assert abs(sum(s["gain_ha"].values()) - sum(s["loss_ha"].values())) < 1e-6
stats.astype(float).round(1)''',
    MAP_HELPER + '''

fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, r in zip(axes, runs):
    plot_classes(r, ax)
changes = gpd.read_file(chg.geojson) if chg.geojson.exists() else None
runs[1].plots.plot(ax=axes[2], color="#eeeeee", edgecolor="#999", linewidth=0.3)
if changes is not None and len(changes):
    changes.to_crs(runs[1].plots.crs).plot(ax=axes[2], column="status", categorical=True, legend=True, edgecolor="#222")
axes[2].set_title("changed / uncertain plots"); axes[2].set_axis_off()''',
    md("## Outputs and the report\n\n`lu.change` wrote the change GeoJSON / GeoTIFF / CSVs; `lu.report` writes the "
       "self-contained web map (open it in any browser)."),
    '''rep = lu.report(runs[0], runs[1], OUT / "report.html", change=chg, options=lu.ReportOptions(basemap="none"),
                overwrite=True)
print(f"{rep.path.name}: {rep.bytes / 1e6:.1f} MB, {rep.change_features} change plots")
print(sorted(p.name for p in chg.path.iterdir()))
print((chg.path / "summary.md").read_text()[:1200])''',
])
# the change notebook needs geopandas in the map cell
p = ROOT / "notebooks" / "02_change_between_years.ipynb"
if not ONLY or p.stem in ONLY:
    book = nbformat.read(p, as_version=4)
    for c in book.cells:
        if c.cell_type == "code" and "plot_classes(r, ax)" in c.source:
            c.source = "import geopandas as gpd\n" + c.source
    nbformat.write(book, p, version=4)

nb("03_custom_vision_endpoint", [
    md("# 03 — The Custom Vision endpoint\n\nCode written for a published Custom Vision model works against "
       "`landuse serve`, which puts any local model behind the same prediction API. Here the official SDK "
       "classifies a chip through it, then `lu.classify(..., backend=\"customvision\")` runs a whole period through "
       "the endpoint and gives the local ONNX backend's probabilities, and `lu.parity` compares the two on a sample."),
    SETUP.format(name="03_custom_vision_endpoint"),
    '''import secrets, socket, subprocess, sys, time, urllib.request

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

port = free_port()
key = secrets.token_hex(16)
env = dict(os.environ, LANDUSE_SERVE_KEY=key)
server = subprocess.Popen([sys.executable, "-m", "landuse", "serve", "default", "--port", str(port)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
endpoint = f"http://127.0.0.1:{port}"
for _ in range(300):
    try:
        urllib.request.urlopen(endpoint + "/", timeout=1).read()
        break
    except OSError:
        time.sleep(0.2)
print("serving the default model on 127.0.0.1")''',
    md("## The SDK, exactly as in Custom Vision's quickstart"),
    '''from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from msrest.authentication import ApiKeyCredentials

tiles = lu.tile([SAMPLES / "2016.tif"], OUT / "tiles", overwrite=True)
chip = sorted(tiles.chips_dir.glob("*.png"))[0]
predictor = CustomVisionPredictionClient(endpoint, ApiKeyCredentials(in_headers={"Prediction-key": key}))
project_id = "00000000-0000-0000-0000-000000000000"
with open(chip, "rb") as image:
    results = predictor.classify_image(project_id, "production", image.read())
for p in results.predictions:
    print(f"{p.tag_name:>12}: {p.probability:.2%}")''',
    md("## A whole period through the endpoint\n\nCredentials come from the environment (`LANDUSE_CV_*`), never "
       "from an argument."),
    '''os.environ.update(LANDUSE_CV_ENDPOINT=endpoint, LANDUSE_CV_PROJECT_ID=project_id,
                  LANDUSE_CV_PUBLISHED_NAME="production", LANDUSE_CV_PREDICTION_KEY=key)
opts = lu.ClassifyOptions(scheduler="threads")
cloud = lu.classify([SAMPLES / "2016.tif"], OUT / "cloud_2016", period="2016", backend="customvision",
                    customvision=lu.CustomVisionOptions(tps=20), options=opts, overwrite=True)
local = lu.classify([SAMPLES / "2016.tif"], OUT / "onnx_2016", period="2016", options=opts, overwrite=True)
probs = [f"prob_{t}" for t in local.labels]
both = cloud.plots.merge(local.plots, on="plot_id", suffixes=("_cloud", "_onnx")).dropna(subset=[f"{probs[0]}_onnx"])
diff = max((both[f"{c}_cloud"] - both[f"{c}_onnx"]).abs().max() for c in probs)
top = lambda side: both[[f"{c}_{side}" for c in probs]].to_numpy().argmax(axis=1)
agreement = (top("cloud") == top("onnx")).mean()
print(f"{len(both)} plots; top class agreement {agreement:.0%}; largest probability difference {diff:.1e}")
assert agreement == 1.0 and diff < 1e-3
# The endpoint returns probabilities only, so the unknown flag falls back to a probability threshold there;
# the local ONNX run flags out-of-class plots from the model's own statistics of the pixels:
print("unknown flag, endpoint:", cloud.summary.raw["unknown_method"].split(":")[0])
print("unknown flag, local:   ", local.summary.raw["unknown_method"].split(":")[0])
pd.crosstab(both["status_onnx"], both["status_cloud"], rownames=["local ONNX"], colnames=["endpoint"])
''',
    '''assert key not in (cloud.path / "manifest.json").read_text()  # the key is never written down
print("backend:", cloud.manifest["model"]["backend"])''',
    md("## Parity on a sample of plots"),
    '''rep = lu.parity([SAMPLES / "2022.tif"], model="default", endpoint=endpoint, project_id=project_id,
                published_name="production", sample=12, tps=20)
print(rep.describe())
assert rep.agreement == 1.0''',
    '''server.terminate()
print("server stopped, exit", server.wait(timeout=30))''',
])

nb("04_train_and_evaluate", [
    md("# 04 — Train and evaluate a classifier\n\nThe Custom Vision way, offline: a folder per tag, train (transfer "
       "learning from ImageNet EfficientNet-Lite0) with `lu.train`, read precision / recall / AP per tag with "
       "`lu.evaluate`, quick-test images with `lu.predict`, and classify with the exported model (Custom Vision "
       "ONNX layout). The dataset here is made from the sample county's chips and its truth, so the notebook runs "
       "anywhere; point `DATASET` at your own tag folders (e.g. from `lu.dataset(..., labels=\"NLCD.tif\")`)."),
    SETUP.format(name="04_train_and_evaluate"),
    '''import shutil
import geopandas as gpd

truth = gpd.read_file(SAMPLES / "truth.geojson")
DATASET = OUT / "dataset"
shutil.rmtree(DATASET, ignore_errors=True)
for year in ("2016", "2022"):
    # min_valid 0.3 keeps partial edge plots too: the small sample county needs them for >= 5 images a tag
    t = lu.tile([SAMPLES / f"{year}.tif"], OUT / f"tiles_{year}", min_valid=0.3, overwrite=True)
    index = gpd.read_file(t.index_path).merge(truth, on="plot_id")
    for _, row in index[index["chip"].notna()].iterrows():
        tag = row[f"class_{year}"]
        (DATASET / tag).mkdir(parents=True, exist_ok=True)
        shutil.copy(t.out_dir / row["chip"], DATASET / tag / f"{year}_{Path(row['chip']).name}")
{d.name: len(list(d.iterdir())) for d in sorted(DATASET.iterdir())}''',
    md("## Train\n\nOne short run at a small image size so the notebook stays quick; the default model was trained "
       "with the command in `landuse/models/MODEL_CARD.md`."),
    '''model = lu.train(DATASET, OUT / "model", options=lu.TrainOptions(epochs=2, image_size=64, seed=0), overwrite=True,
                 progress=lambda line: None)
print(model.path.name, model.precision, model.labels)
sorted(p.name for p in model.path.iterdir())''',
    md("## Precision, recall and AP per tag (as the portal's Performance page shows them)\n\n"
       "Precision and recall count an image for a tag when that tag's probability reaches the threshold (0.5, as the "
       "portal); AP does not depend on it; the confusion matrix below is by top tag. Two epochs at 64 px are a "
       "smoke run, not a model to use."),
    '''ev = lu.evaluate(model.path, DATASET)
print(f"precision {ev.precision:.2f}  recall {ev.recall:.2f}  mAP {ev.map:.2f}  accuracy {ev.accuracy:.2f}")
pd.DataFrame([vars(t) for t in ev.per_tag])''',
    '''pd.DataFrame(ev.confusion, index=pd.Index(ev.labels, name="truth"), columns=pd.Index(ev.labels, name="top tag"))''',
    md("## A quick test of a few images, then a run with the new model"),
    '''images = sorted(DATASET.rglob("*.png"))[:4]
pd.DataFrame([{"file": Path(p.file).name, "top tag": p.tag, "probability": p.tags[0][1]}
              for p in lu.predict(model.path, images).images])''',
    '''run = lu.classify([SAMPLES / "2022.tif"], OUT / "run_2022", period="2022", model=model.path,
                  options=lu.ClassifyOptions(scheduler="threads"), overwrite=True)
run.plots["label"].value_counts()''',
])

import os  # noqa: E402
import tempfile  # noqa: E402

from nbclient import NotebookClient  # noqa: E402

with tempfile.TemporaryDirectory() as out:
    os.environ["LANDUSE_NB_OUT"] = out
    os.environ["LANDUSE_NB_SHARED"] = str(Path(out) / "no-shared-data")  # committed outputs: sample county
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT.resolve()), os.environ.get("PYTHONPATH")]))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if ONLY and path.stem not in ONLY:
            continue
        book = nbformat.read(path, as_version=4)
        NotebookClient(book, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        for c in book.cells:
            c.pop("id", None)
            if c.cell_type == "code":
                c.outputs = [o for o in c.outputs if o.get("name") != "stderr"]
        nbformat.write(book, path, version=4)
        print(path.name, path.stat().st_size // 1024, "KB")
