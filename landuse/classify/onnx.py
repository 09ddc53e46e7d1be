"""ONNX backend: Custom Vision exports (both generations) and generic ONNX classifiers.

Accepted model paths:

* a Custom Vision export zip (``model.onnx``, ``labels.txt``, optional ``metadata_properties.json``
  and ``cvexport.manifest``);
* the same export unpacked in a folder;
* a bare ``.onnx`` file with ``labels=`` (a list, or a ``labels.txt`` path), or a ``labels.txt``
  beside it.

Output kinds (detected from the session's outputs):

* Generation A (2018-2019): outputs ``classLabel`` (string) and ``loss``, a ZipMap
  (sequence of label -> probability maps). Always BGR, 0-255 (mean subtraction is in the graph).
* Generation B: one float output ``model_output`` (N x classes) in ``labels.txt`` order.
* Generic classifiers: one float output; logits are turned into probabilities with softmax
  (sigmoid for multilabel models) when rows are not already probabilities.

Preprocessing: channel order and pixel range come from the metadata embedded in ``model.onnx``
(``Image.BitmapPixelFormat`` Bgr8 / Rgb8, ``Image.NominalPixelRange`` NominalRange_0_255 /
Normalized_0_1 / Normalized_1_1, case-insensitive); Generation A is forced to BGR 0-255; the
``color=`` / ``scale=`` options override both. Without metadata: RGB, 0-255. The sidecar
``metadata_properties.json`` is *not* trusted for colour or range (real exports state
``Rgb8`` / ``Normalized_0_1`` regardless of the model); it is only read for multilabel.
"""

from __future__ import annotations

import hashlib
import html
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landuse.errors import ModelError

MODEL_FILE = "model.onnx"
LABELS_FILE = "labels.txt"
METADATA_FILE = "metadata_properties.json"
MANIFEST_FILE = "cvexport.manifest"
LANDUSE_FILE = "landuse_model.json"  # our exports: expected GSD, unknown-flag statistics, training hashes
FEATURES_FILE = "features.npz"  # our exports: training-plot features (unknown flag, train --init)
DEFAULT_SIZE = 224
DEFAULT_BATCH = 64

# canonical scale name -> (multiplier, offset) applied to 0-255 pixel values
SCALES: dict[str, tuple[float, float]] = {
    "0-255": (1.0, 0.0),
    "0-1": (1.0 / 255.0, 0.0),
    "-1-1": (2.0 / 255.0, -1.0),
}
_SCALE_ALIASES = {
    "0-255": "0-255", "0_255": "0-255", "255": "0-255", "nominalrange_0_255": "0-255",
    "0-1": "0-1", "0_1": "0-1", "1": "0-1", "normalized_0_1": "0-1",
    "-1-1": "-1-1", "-1_1": "-1-1", "normalized_1_1": "-1-1",
}
_COLORS = {"rgb": "rgb", "rgb8": "rgb", "bgr": "bgr", "bgr8": "bgr"}


# Rows of a multiclass model within this of 1 are probabilities (int8 softmax outputs miss by ~1e-2).
PROB_SUM_TOLERANCE = 0.02


@dataclass(frozen=True)
class _Sources:
    """Where the files of one model live (bytes are read on demand so the object stays small)."""

    path: Path  # what the user gave
    model_name: str  # file name inside a zip, or the .onnx path
    is_zip: bool

    def model_bytes(self) -> bytes:
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.model_name)
        return Path(self.model_name).read_bytes()


def _norm_scale(value: str, where: str) -> str:
    key = str(value).strip().lower()
    if key not in _SCALE_ALIASES:
        raise ModelError(f"pixel range {value!r} ({where}) is not supported; use one of 0-255, 0-1, -1-1")
    return _SCALE_ALIASES[key]


def _norm_color(value: str, where: str) -> str:
    key = str(value).strip().lower()
    if key not in _COLORS:
        raise ModelError(f"pixel format {value!r} ({where}) is not supported; use rgb or bgr")
    return _COLORS[key]


def parse_labels(text: str, where: str) -> list[str]:
    """Labels from a ``labels.txt`` text: one per line, HTML entities unescaped, blank lines dropped."""
    labels = [html.unescape(line).strip() for line in text.splitlines()]
    labels = [lab for lab in labels if lab]
    if not labels:
        raise ModelError(f"labels file {where} is empty; write one tag name per line in output order")
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise ModelError(f"labels file {where} repeats {', '.join(dupes)}; each tag must appear once")
    return labels


class OnnxClassifier:
    """A local ONNX classifier implementing :class:`landuse.classify.base.Classifier`.

    Picklable: only the path and options (plus the derived settings) travel; the
    onnxruntime session is re-created lazily in the receiving process.
    """

    backend = "onnx"
    # set by load()
    path: Path
    options: dict[str, Any]
    threads: int
    batch_size: int
    _src: Any
    model_hash: str
    model_id: str
    manifest: dict[str, Any]
    landuse_meta: dict[str, Any]
    multilabel: bool

    def __init__(self) -> None:  # use OnnxClassifier.load
        self._session: Any = None
        self._buf: np.ndarray | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        path: str | Path,
        labels: list[str] | str | Path | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        color: str | None = None,
        scale: str | None = None,
        multilabel: bool | None = None,
    ) -> OnnxClassifier:
        """Load an export zip, an export folder or a bare ``.onnx`` file (see the module doc).

        ``threads``: onnxruntime intra-op threads (default 1: the pipeline runs one session per
        worker). ``batch_size``: most images per ``session.run`` for dynamic-batch models
        (default 64). ``color`` (rgb / bgr) and ``scale`` (0-255 / 0-1 / -1-1) override the
        model's metadata. ``multilabel`` overrides the export's classification type.
        """
        self = cls()
        path = Path(path)
        self.path = path
        self.options = dict(
            labels=labels, threads=threads, batch_size=batch_size, color=color, scale=scale,
            multilabel=multilabel,
        )
        if threads is not None and int(threads) < 1:
            raise ModelError(f"threads={threads} for model {path}; pass a positive number")
        if batch_size is not None and int(batch_size) < 1:
            raise ModelError(f"batch_size={batch_size} for model {path}; pass a positive number")
        self.threads = int(threads) if threads else 1
        self.batch_size = int(batch_size) if batch_size else DEFAULT_BATCH

        src, files = _locate(path)
        self._src = src
        model_bytes = src.model_bytes()
        self.model_hash = hashlib.sha256(model_bytes).hexdigest()
        self.model_id = str(path.resolve())
        manifest = _json_or_none(files.get(MANIFEST_FILE))
        sidecar = _json_or_none(files.get(METADATA_FILE))
        self.manifest = manifest or {}
        self.landuse_meta = _json_or_none(files.get(LANDUSE_FILE)) or {}

        session = self._new_session(model_bytes)
        self._describe(session, labels, files, color, scale)
        self._setup_unknown()
        self.multilabel = bool(multilabel) if multilabel is not None else _is_multilabel(
            self.metadata, sidecar, manifest
        )
        self._session = session
        return self

    def _new_session(self, model_bytes: bytes) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # Gen-A exports warn on every batched call about classLabel's shape
        try:
            return ort.InferenceSession(model_bytes, sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelError(
                f"model {self._where()} cannot be loaded by onnxruntime ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); re-export the model or check the file"
            ) from exc

    def _where(self) -> str:
        src = self._src
        return f"{src.path}!{src.model_name}" if src.is_zip else str(src.model_name)

    def _describe(self, session: Any, labels: Any, files: dict[str, Any], color: str | None,
                  scale: str | None) -> None:
        """Read inputs, outputs, metadata and labels from the session; validate them."""
        where = self._where()
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"model {where} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                f"an image classifier takes exactly one image tensor"
            )
        inp = inputs[0]
        dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
        if inp.type not in dtypes:
            raise ModelError(f"model {where} input {inp.name!r} is {inp.type}; only float32 / float16 image inputs are supported")
        self.input_name = inp.name
        self.input_dtype = np.dtype(dtypes[inp.type])
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelError(f"model {where} input {inp.name!r} has shape {shape}; expected 4-D NCHW or NHWC")
        if shape[1] == 3:
            self.layout, hdim, wdim = "NCHW", shape[2], shape[3]
        elif shape[3] == 3:
            self.layout, hdim, wdim = "NHWC", shape[1], shape[2]
        else:
            raise ModelError(f"model {where} input {inp.name!r} has shape {shape}; expected 3 colour channels (NCHW or NHWC)")
        h = hdim if isinstance(hdim, int) and hdim > 0 else DEFAULT_SIZE
        w = wdim if isinstance(wdim, int) and wdim > 0 else DEFAULT_SIZE
        self.input_size = (int(h), int(w))
        self.fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None

        # outputs: ZipMap (Gen A) or float tensor
        outputs = session.get_outputs()
        zipmaps = [o for o in outputs if str(o.type).startswith("seq(map(")]
        floats = [o for o in outputs if o.type in ("tensor(float)", "tensor(float16)", "tensor(double)")]
        if zipmaps:
            out = next((o for o in zipmaps if o.name == "loss"), zipmaps[0])
            self.generation = "A"
        elif floats:
            out = next((o for o in floats if o.name == "model_output"), floats[0])
            self.generation = "B" if out.name == "model_output" else "generic"
        else:
            raise ModelError(
                f"model {where} has no probability output (outputs: "
                f"{', '.join(f'{o.name} {o.type}' for o in outputs)}); expected a float tensor or a ZipMap"
            )
        self.output_name = out.name
        self.features_name = next((o.name for o in floats if o.name == "features"), None) if not zipmaps else None

        self._keys = _zipmap_keys(self._src) if self.generation == "A" else None
        meta = session.get_modelmeta().custom_metadata_map or {}
        self.metadata = {str(k).lower(): str(v) for k, v in meta.items()}

        # labels: option > labels.txt > ZipMap's own class labels
        self.labels = self._resolve_labels(labels, files)
        n = len(self.labels)
        if self.generation == "A":
            keys = self._keys
            if keys is not None and sorted(map(str, keys)) != sorted(self.labels) and not all(
                isinstance(k, int) for k in keys
            ):
                raise ModelError(
                    f"labels of model {where} ({', '.join(self.labels)}) differ from the model's own "
                    f"class labels ({', '.join(map(str, keys))}); fix labels.txt"
                )
            if keys is not None and all(isinstance(k, int) for k in keys) and len(keys) != n:
                raise ModelError(f"model {where} has {len(keys)} classes but {n} labels; fix labels.txt")
            self._zip_keys: list[Any] = (
                list(range(n)) if keys is not None and all(isinstance(k, int) for k in keys) else list(self.labels)
            )
        else:
            oshape = list(out.shape)
            classes = [d for d in oshape[1:] if not (isinstance(d, int) and d == 1)]
            if len(oshape) >= 2 and len(classes) == 1 and isinstance(classes[0], int) and classes[0] != n:
                raise ModelError(
                    f"model {where} outputs {classes[0]} classes but {n} labels were given "
                    f"({', '.join(self.labels)}); fix labels.txt so line i names output i"
                )

        # preprocessing
        if color is not None:
            self.color, csrc = _norm_color(color, "color option"), "option"
        elif self.generation == "A":
            self.color, csrc = "bgr", "Custom Vision generation A"
        elif "image.bitmappixelformat" in self.metadata:
            self.color = _norm_color(self.metadata["image.bitmappixelformat"], f"Image.BitmapPixelFormat of {where}")
            csrc = "model metadata"
        else:
            self.color, csrc = "rgb", "default"
        if scale is not None:
            self.scale, ssrc = _norm_scale(scale, "scale option"), "option"
        elif self.generation == "A":
            self.scale, ssrc = "0-255", "Custom Vision generation A"
        elif "image.nominalpixelrange" in self.metadata:
            self.scale = _norm_scale(self.metadata["image.nominalpixelrange"], f"Image.NominalPixelRange of {where}")
            ssrc = "model metadata"
        else:
            self.scale, ssrc = "0-255", "default"
        self.preprocessing = {
            "layout": self.layout, "dtype": str(self.input_dtype), "size": list(self.input_size),
            "color": self.color, "color_from": csrc, "scale": self.scale, "scale_from": ssrc,
            "resize": "bilinear", "generation": self.generation,
        }
        self._softmax: bool | None = None  # decided from the first outputs seen (generic models)

    def _resolve_labels(self, labels: Any, files: dict[str, Any]) -> list[str]:
        if isinstance(labels, (list, tuple)):
            if not labels:
                raise ModelError(f"an empty labels list was given for model {self._where()}; pass one label per output")
            return parse_labels("\n".join(map(str, labels)), "(labels option)")
        if labels is not None:
            lp = Path(labels)
            if not lp.is_file():
                raise ModelError(f"labels file {lp} does not exist; pass a labels.txt path or a list of labels")
            return parse_labels(_read_text(lp), str(lp))
        if LABELS_FILE in files:
            return parse_labels(files[LABELS_FILE], files[LABELS_FILE + ":where"])
        if self.generation == "A":
            keys = self._keys
            if keys and all(isinstance(k, str) for k in keys):
                return list(keys)
        raise ModelError(
            f"model {self._where()} has no labels.txt; put one beside it (one tag per line in output order) "
            f"or pass labels"
        )

    def _setup_unknown(self) -> None:
        """The unknown-flag method: our features statistics when the export has them."""
        from landuse.classify.unknown import UnknownMethod

        self.gsd_m: float | None = None
        meta_gsd = self.landuse_meta.get("gsd_m", self.metadata.get("landuse.gsd_m"))
        if meta_gsd is not None:
            try:
                self.gsd_m = float(meta_gsd)
            except (TypeError, ValueError):
                raise ModelError(f"gsd_m {meta_gsd!r} of model {self._where()} is not a number; fix {LANDUSE_FILE}") from None
        self.training_sha256 = frozenset(str(h) for h in self.landuse_meta.get("training_images_sha256", []))
        self.unknown_method: UnknownMethod | None = None
        self._scorer: Any = None
        unk = self.landuse_meta.get("unknown")
        if self.features_name is None or not isinstance(unk, dict) or unk.get("method") != "features":
            return
        if not files_has(self._src, FEATURES_FILE):
            raise ModelError(f"model {self._where()} names {FEATURES_FILE} in {LANDUSE_FILE} but has no such file; re-export it")
        try:
            thr = float(unk["threshold"])
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"model {self._where()}: {LANDUSE_FILE} has no numeric unknown.threshold; re-export it") from None
        self.unknown_method = UnknownMethod("features", thr, str(unk.get("description", "features")))

    def training_features(self) -> dict[str, np.ndarray]:
        """The arrays of the export's ``features.npz`` (training-plot features, labels, views)."""
        import io

        if not files_has(self._src, FEATURES_FILE):
            raise ModelError(f"model {self._where()} has no {FEATURES_FILE}; it cannot be adapted or flag unknown plots")
        data = sidecar_bytes(self._src, FEATURES_FILE)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise ModelError(f"{FEATURES_FILE} of model {self._where()} is unreadable ({exc}); re-export the model") from exc

    def scorer(self) -> Any:
        """The k-nearest-neighbour scorer over the training features (built once per process)."""
        from landuse.classify.unknown import KnnScorer

        if self._scorer is None:
            f = self.training_features()
            k = int(self.landuse_meta.get("unknown", {}).get("k", 5))
            self._scorer = KnnScorer.fit(f["features"].astype(np.float32), k=k)
        return self._scorer

    def predict_unknown(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, unknown scores) for uint8 RGB plots; needs an export with features."""
        if self.unknown_method is None or self.features_name is None:
            raise ModelError(f"model {self._where()} carries no features statistics; use the probability fallback")
        from landuse.classify.unknown import canopy_evidence

        unk = self.landuse_meta["unknown"]
        knn_thr = unk.get("knn_threshold")
        probs, feats = self._run(batch, with_features=knn_thr is not None)
        score = np.zeros(len(probs), np.float32)
        if knn_thr is not None:
            score = self.scorer().score(feats) / float(knn_thr)
        if unk.get("canopy_threshold") is not None:
            if batch.shape[1:3] != self.input_size:
                batch = _resize(batch, self.input_size)
            green_min = float(unk.get("canopy_green_min", 0.0))
            score = np.maximum(score, canopy_evidence(batch, green_min) / float(unk["canopy_threshold"]))
        return probs, score.astype(np.float32)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        state["_buf"] = None
        state["_scorer"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def session(self) -> Any:
        """The onnxruntime session, created on first use in this process."""
        if self._session is None:
            data = self._src.model_bytes()
            if hashlib.sha256(data).hexdigest() != self.model_hash:
                raise ModelError(f"model {self._where()} changed since it was loaded; reload it")
            self._session = self._new_session(data)
        return self._session

    # ------------------------------------------------------------------ inference
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, len(labels))`` float32 for ``uint8`` RGB plots ``(N, H, W, 3)``.

        Plots not at ``input_size`` are resized (bilinear).
        """
        if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
            desc = (f"{batch.dtype} array shaped {batch.shape}" if isinstance(batch, np.ndarray)
                    else type(batch).__name__)
            raise ModelError(
                f"model {self.model_id} takes uint8 RGB plots shaped (N, H, W, 3); got {desc}"
            )
        return self._run(batch, with_features=False)[0]

    def _run(self, batch: np.ndarray, with_features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        n = batch.shape[0]
        k = len(self.labels)
        result = np.empty((n, k), dtype=np.float32)
        feats: np.ndarray | None = None
        names = [self.output_name] + ([self.features_name] if with_features and self.features_name else [])
        if n == 0:
            return result, (np.empty((0, 0), np.float32) if with_features else None)
        if batch.shape[1:3] != self.input_size:
            batch = _resize(batch, self.input_size)
        sess = self.session()
        step = self.fixed_batch or self.batch_size
        for start in range(0, n, step):
            chunk = batch[start:start + step]
            m = chunk.shape[0]
            feed = self._fill(chunk, self.fixed_batch or m)
            outs = sess.run(names, {self.input_name: feed})
            result[start:start + m] = self._postprocess(outs[0])[:m]
            if len(outs) > 1:
                f = np.asarray(outs[1], np.float32).reshape(outs[1].shape[0], -1)
                if feats is None:
                    feats = np.empty((n, f.shape[1]), np.float32)
                feats[start:start + m] = f[:m]
        return result, feats

    def _fill(self, chunk: np.ndarray, rows: int) -> np.ndarray:
        """Preprocess ``chunk`` into a reused input buffer of ``rows`` rows (padding with zeros)."""
        h, w = self.input_size
        shape = (rows, 3, h, w) if self.layout == "NCHW" else (rows, h, w, 3)
        if self._buf is None or self._buf.shape[0] < rows:
            self._buf = np.zeros(shape, dtype=np.float32)
        buf = self._buf[:rows]
        m = chunk.shape[0]
        src = chunk[..., ::-1] if self.color == "bgr" else chunk
        if self.layout == "NCHW":
            src = src.transpose(0, 3, 1, 2)
        view = buf[:m]
        view[...] = src
        mul, off = SCALES[self.scale]
        if mul != 1.0:
            view *= np.float32(mul)
        if off != 0.0:
            view += np.float32(off)
        if m < rows:
            buf[m:] = 0
        return buf if self.input_dtype == np.float32 else buf.astype(self.input_dtype)

    def _postprocess(self, out: Any) -> np.ndarray:
        k = len(self.labels)
        if self.generation == "A":
            rows = list(out)
            try:
                return np.array([[float(d[key]) for key in self._zip_keys] for d in rows], dtype=np.float32)
            except KeyError as exc:
                raise ModelError(
                    f"model {self._where()} returned no probability for label {exc}; fix labels.txt"
                ) from exc
        arr = np.asarray(out, dtype=np.float32)
        arr = arr.reshape(arr.shape[0], -1)
        if arr.shape[1] != k:
            raise ModelError(
                f"model {self._where()} outputs {arr.shape[1]} classes but has {k} labels "
                f"({', '.join(self.labels)}); fix labels.txt so line i names output i"
            )
        if self._softmax is None:
            in_unit = bool(np.all((arr >= 0) & (arr <= 1)))
            if self.multilabel or self.generation == "B":
                # Custom Vision's model_output is probabilities by contract; only values outside
                # 0..1 betray logits.
                is_prob = in_unit
            else:
                # int8 models quantise their softmax output (steps of ~1/256 a class), so rows of
                # probabilities may miss 1 by a few thousandths: allow PROB_SUM_TOLERANCE.
                is_prob = in_unit and bool(np.allclose(arr.sum(axis=1), 1.0, atol=PROB_SUM_TOLERANCE))
            self._softmax = not is_prob
            self.preprocessing["postprocess"] = (
                "none" if is_prob else ("sigmoid" if self.multilabel else "softmax")
            )
        if self._softmax:
            if self.multilabel:
                arr = (1.0 / (1.0 + np.exp(-arr))).astype(np.float32)
            else:
                arr = np.exp(arr - arr.max(axis=1, keepdims=True))
                arr /= arr.sum(axis=1, keepdims=True)
        elif not self.multilabel:
            # renormalise quantised probabilities so each row sums to 1
            sums = arr.sum(axis=1, keepdims=True)
            arr = np.divide(arr, sums, out=arr.copy(), where=sums > 0)
        return arr.astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return (f"OnnxClassifier({self.model_id!r}, labels={self.labels}, size={self.input_size}, "
                f"{self.color}/{self.scale}, generation={self.generation})")


# ---------------------------------------------------------------------- helpers
def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path} is not UTF-8 text; save it as UTF-8") from exc


def _json_or_none(text: tuple[str, str] | None) -> dict[str, Any] | None:
    """Parse a ``(text, where)`` JSON sidecar; ``None`` when absent."""
    if text is None:
        return None
    from landuse.fileio import parse_json

    body, where = text
    return dict(parse_json(body, where, "fix or remove it", ModelError))


def _locate(path: Path) -> tuple[_Sources, dict[str, Any]]:
    """Find the model file and read the small sidecar files of a zip, folder or .onnx path.

    Returns the model source and ``files``: ``labels.txt`` text (plus ``labels.txt:where``), and
    ``(text, where)`` pairs for the JSON sidecars.
    """
    files: dict[str, Any] = {}
    if not path.exists():
        raise ModelError(f"model {path} does not exist; pass a Custom Vision export (zip or folder) or a .onnx file")
    if path.is_dir():
        model = path / MODEL_FILE
        manifest_path = path / MANIFEST_FILE
        if manifest_path.is_file():
            files[MANIFEST_FILE] = (_read_text(manifest_path), str(manifest_path))
            name = _json_or_none(files[MANIFEST_FILE]).get("ModelFileName")  # type: ignore[union-attr]
            if isinstance(name, str) and name and (path / name).is_file():
                model = path / name
        if not model.is_file():
            raise ModelError(f"model folder {path} has no {MODEL_FILE}; pass a Custom Vision ONNX export folder")
        for name in (LABELS_FILE, METADATA_FILE, LANDUSE_FILE):
            p = path / name
            if p.is_file():
                files[name] = _read_text(p) if name == LABELS_FILE else (_read_text(p), str(p))
                if name == LABELS_FILE:
                    files[LABELS_FILE + ":where"] = str(p)
        return _Sources(path, str(model), False), files
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                by_base: dict[str, str] = {}
                for n in sorted(names, key=lambda s: s.count("/")):  # prefer top-level files
                    by_base.setdefault(n.rsplit("/", 1)[-1], n)
                model_name = by_base.get(MODEL_FILE)
                if model_name is None:
                    onnx_files = [n for n in names if n.lower().endswith(".onnx")]
                    if len(onnx_files) == 1:
                        model_name = onnx_files[0]
                if model_name is None:
                    raise ModelError(f"zip {path} holds no {MODEL_FILE}; pass a Custom Vision ONNX export zip")
                for name in (LABELS_FILE, METADATA_FILE, MANIFEST_FILE, LANDUSE_FILE):
                    if name in by_base:
                        where = f"{path}!{by_base[name]}"
                        try:
                            text = zf.read(by_base[name]).decode("utf-8-sig")
                        except UnicodeDecodeError as exc:
                            raise ModelError(f"{where} is not UTF-8 text; fix the export") from exc
                        if name == LABELS_FILE:
                            files[name], files[name + ":where"] = text, where
                        else:
                            files[name] = (text, where)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelError(f"zip {path} is corrupt ({exc}); download the export again") from exc
        return _Sources(path, model_name, True), files
    if path.suffix.lower() == ".zip":
        raise ModelError(f"zip {path} is corrupt (not a zip archive); download the export again")
    # a bare model file; a labels.txt beside it counts
    side = path.parent / LABELS_FILE
    if side.is_file():
        files[LABELS_FILE], files[LABELS_FILE + ":where"] = _read_text(side), str(side)
    return _Sources(path, str(path), False), files


def _sidecar_member(src: _Sources, name: str) -> str | None:
    """Where sidecar ``name`` of a model lives (zip member or file path), or None."""
    if src.is_zip:
        with zipfile.ZipFile(src.path) as zf:
            members = sorted((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == name), key=lambda n: n.count("/"))
        return members[0] if members else None
    p = Path(src.model_name).parent / name
    return str(p) if p.is_file() else None


def files_has(src: _Sources, name: str) -> bool:
    """Whether the model's export holds sidecar file ``name``."""
    return _sidecar_member(src, name) is not None


def sidecar_bytes(src: _Sources, name: str) -> bytes:
    """The bytes of sidecar file ``name`` of a model export."""
    member = _sidecar_member(src, name)
    if member is None:
        raise ModelError(f"model {src.path} has no {name}")
    if src.is_zip:
        with zipfile.ZipFile(src.path) as zf:
            return zf.read(member)
    return Path(member).read_bytes()


def _zipmap_keys(src: _Sources) -> list[Any] | None:
    """The class labels of a ZipMap node (strings or ints), read from the ONNX graph."""
    import onnx

    try:
        model = onnx.load_from_string(src.model_bytes())
    except Exception:  # the session already loaded it; the labels are only a cross-check
        return None
    for node in model.graph.node:
        if node.op_type == "ZipMap":
            for attr in node.attribute:
                if attr.name == "classlabels_strings":
                    return [s.decode("utf-8") for s in attr.strings]
                if attr.name == "classlabels_int64s":
                    return [int(i) for i in attr.ints]
    return None


def _is_multilabel(meta: dict[str, str], sidecar: dict[str, Any] | None, manifest: dict[str, Any] | None) -> bool:
    values = [meta.get("customvision.postprocess.method", "")]
    for d in (sidecar or {}, manifest or {}):
        for key, v in d.items():
            if str(key).lower() in ("customvision.postprocess.method", "classificationtype", "classification_type"):
                values.append(str(v))
    return any("multilabel" in v.lower() for v in values)


def _resize(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of every plot to ``size=(h, w)`` (Pillow)."""
    from PIL import Image

    h, w = size
    out = np.empty((batch.shape[0], h, w, 3), dtype=np.uint8)
    for i, img in enumerate(batch):
        out[i] = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((w, h), Image.Resampling.BILINEAR))
    return out
