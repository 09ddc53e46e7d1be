"""Write a trained model in the Custom Vision export layout (newer generation).

    MODEL_DIR/
      model.onnx                 input ``data`` float32 [N,3,H,W] RGB 0-255, output ``model_output``
                                 softmax probabilities [N,C]; embedded metadata_props
                                 Image.BitmapPixelFormat=Rgb8, Image.NominalPixelRange=NominalRange_0_255
      labels.txt                 one tag per line, in output order
      metadata_properties.json   CustomVision.* preprocessing / postprocessing keys
      cvexport.manifest          JSON: the Custom Vision keys plus the training provenance

The folder is written under a temporary name and renamed into place (atomic); an existing folder
is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from landuse.errors import OutputExistsError
from landuse.fileio import swap_in_dir

INPUT_NAME = "data"
OUTPUT_NAME = "model_output"
OPSET = 17


def metadata_properties(image_size: int, multilabel: bool = False) -> dict[str, str]:
    """The ``metadata_properties.json`` content for a model taking ``image_size`` square inputs."""
    return {
        "CustomVision.Metadata.AdditionalModelInfo": "",
        "CustomVision.Metadata.Version": "1.2",
        "CustomVision.Postprocess.Method": (
            "ClassificationMultiLabel" if multilabel else "ClassificationMultiClass"
        ),
        "CustomVision.Postprocess.Yolo.Biases": "[]",
        "CustomVision.Postprocess.Yolo.NmsThreshold": "0.0",
        "CustomVision.Preprocess.CropHeight": "0",
        "CustomVision.Preprocess.CropMethod": "NoCrop",
        "CustomVision.Preprocess.CropWidth": "0",
        "CustomVision.Preprocess.MaxDimension": "0",
        "CustomVision.Preprocess.MaxScale": "0.0",
        "CustomVision.Preprocess.MinDimension": "0",
        "CustomVision.Preprocess.MinScale": "0.0",
        "CustomVision.Preprocess.NormalizeMean": "[0.0, 0.0, 0.0]",
        "CustomVision.Preprocess.NormalizeStd": "[1.0, 1.0, 1.0]",
        "CustomVision.Preprocess.ResizeMethod": "Stretch",
        "CustomVision.Preprocess.TargetHeight": str(image_size),
        "CustomVision.Preprocess.TargetWidth": str(image_size),
        "Image.BitmapPixelFormat": "Rgb8",
        "Image.ColorSpaceGamma": "SRGB",
        "Image.NominalPixelRange": "NominalRange_0_255",
    }


def export_onnx(wrapper: Any, path: Path, image_size: int, model_name: str, version: str) -> Path:
    """Export ``wrapper`` (RGB 0-255 in, probabilities out) to ``path`` with the legacy exporter."""
    import onnx
    import torch

    wrapper = wrapper.eval()
    dummy = torch.zeros(1, 3, image_size, image_size, dtype=torch.float32)
    torch.onnx.export(
        wrapper,
        (dummy,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )
    model = onnx.load(str(path))
    set_metadata(model, model_name, version)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def set_metadata(model: Any, model_name: str, version: str) -> None:
    """Embed the pixel format / range and the model's name and version in ``model.metadata_props``."""
    import onnx

    props = {
        "Image.BitmapPixelFormat": "Rgb8",
        "Image.NominalPixelRange": "NominalRange_0_255",
        "Image.ColorSpaceGamma": "SRGB",
        "model_name": model_name,
        "model_version": version,
    }
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in kept}, **props})
    model.producer_name = "landuse"
    model.doc_string = f"{model_name} {version}: RGB 0-255 [N,3,H,W] -> softmax probabilities (labels.txt order)"


def sha1_file(path: Path) -> str:
    """Hex SHA-1 of a file (the Custom Vision manifest's ``ModelFileSHA1``)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def write_export(
    out_dir: Path,
    onnx_file: Path,
    labels: list[str],
    image_size: int,
    provenance: dict[str, Any],
    overwrite: bool = False,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Assemble the export folder at ``out_dir`` from a written ``onnx_file`` (moved in), atomically."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"model folder {out_dir} exists; pass `overwrite=True` or choose another `out`")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model folder is ordinary package data
    try:
        shutil.copyfile(onnx_file, tmp / "model.onnx")
        (tmp / "labels.txt").write_text("".join(f"{t}\n" for t in labels), encoding="utf-8")
        (tmp / "metadata_properties.json").write_text(
            json.dumps(metadata_properties(image_size), indent=2) + "\n", encoding="utf-8"
        )
        for name, src in (extra_files or {}).items():
            shutil.copyfile(src, tmp / name)
        manifest = {
            "DomainType": "Classification",
            "Platform": "ONNX",
            "Flavor": None,
            "ExporterVersion": "2.2",
            "ExportedDate": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "IterationId": provenance.get("run_id", ""),
            "ModelFileName": "model.onnx",
            "LabelFileName": "labels.txt",
            "MetadataPropsFileName": "metadata_properties.json",
            "ModelFileSHA1": sha1_file(tmp / "model.onnx"),
            "SchemaVersion": "1.0",
            "Training": provenance,
        }
        (tmp / "cvexport.manifest").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        swap_in_dir(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir
