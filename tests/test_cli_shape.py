"""The CLI is a thin adapter over the API: small modules, library errors spoken in flags."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from landuse.cli import main

CLI = Path(__file__).resolve().parents[1] / "landuse" / "cli"
# what a command module may import from the package: the API, the CLI's own options, defaults,
# errors, and the types / choices of results it renders
ALLOWED = ("landuse.api", "landuse.api.workflows", "landuse.cli", "landuse.defaults", "landuse.errors", "landuse")
RENDERED = {"landuse.training.evaluate", "landuse.label.selection", "landuse.assess.sample", "landuse.serve",
            "landuse.samples", "landuse.label", "landuse.report.change_outputs",
            "landuse.report.predictions"}


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_command_modules_are_thin(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert len(lines) <= 120, f"{path.name} has {len(lines)} lines; move the work into the library"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("landuse"):
            assert node.module in ALLOWED or node.module.startswith("landuse.cli") or node.module in RENDERED, (
                f"{path.name} imports {node.module}: call the API (landuse.api) instead"
            )


def test_library_errors_name_parameters_the_cli_names_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import landuse as lu
    from landuse.errors import InputError

    sample = Path(__file__).resolve().parents[1] / "sample_rasters" / "2016.tif"
    with pytest.raises(InputError, match=r"^min_valid 0\.0 is outside") as err:
        lu.classify([sample], tmp_path / "run", period="2016", options=lu.ClassifyOptions(min_valid=0.0))
    assert err.value.param == "min_valid"
    assert main(["classify", str(sample), "--period", "2016", "--out", str(tmp_path / "run"), "--min-valid", "0"]) == 1
    msg = capsys.readouterr().err
    assert msg.startswith("landuse: error: --min-valid 0.0 is outside (0, 1]") and msg.count("\n") == 1
    assert main(["parity", str(sample), "--bands", "1,x", "--endpoint", "http://127.0.0.1:9"]) == 1
    msg = capsys.readouterr().err
    assert "--bands '1,x' are not band numbers" in msg and "Traceback" not in msg


def test_library_messages_name_no_cli_flag() -> None:
    """Outside cli/, an error message names parameters (`out`, `overwrite=True`), not flags;
    suggested commands in backticks (`landuse change A B --out DIR`) keep theirs."""
    import re

    flag = re.compile(r"(?<![\w`/-])--[a-z][a-z0-9-]*")
    found = []
    for path in sorted((CLI.parent).rglob("*.py")):
        if CLI in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if not (name.endswith("Error") or name in ("write_error", "ConfirmationRequired")):
                continue
            parts = {id(v) for j in ast.walk(node.args[0]) if isinstance(j, ast.JoinedStr) for v in j.values}
            for sub in ast.walk(node.args[0]):
                if id(sub) in parts:
                    continue
                if isinstance(sub, ast.JoinedStr):  # an f-string: its text, values as X
                    text = "".join(v.value if isinstance(v, ast.Constant) else "X" for v in sub.values)
                elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    text = sub.value
                else:
                    continue
                text = re.sub(r"`[^`]* [^`]*`", "", text)
                found += [f"{path.name}:{sub.lineno}: {m}" for m in flag.findall(text)]
    assert not found, sorted(set(found))


def test_cli_message_spells_parameters_as_flags() -> None:
    from landuse.cli.options import cli_message
    from landuse.errors import InputError, OutputExistsError

    err = OutputExistsError("/data/out/run exists; pass `overwrite=True` or choose another `out`")
    assert cli_message(err) == "/data/out/run exists; pass --overwrite or choose another --out"
    assert cli_message(InputError("pick a compact domain or pass `export=False`")) == "pick a compact domain or pass --no-export"
    assert cli_message(InputError("plots of at least 9 m (`plot_size_m`); `fmt` 'x'")) == "plots of at least 9 m (--plot-size); --format 'x'"
    assert cli_message(InputError("give the `out` of a finished `landuse classify`")) == "give the --out of a finished `landuse classify`"
    assert cli_message(InputError("`filter` 'x' is not valid CQL2")) == "--stac-filter 'x' is not valid CQL2"
