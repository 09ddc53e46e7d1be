"""The README as a user of a fresh clone reads it: its offline examples run as written, every
`landuse` command line it shows names real commands and options, and it points at no file outside
the repository."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUN_MARK = "<!-- readme-test: run -->"
FENCE = re.compile(r"(?P<mark><!-- readme-test: run -->\s*\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)\n```", re.S)


def _blocks() -> list[tuple[bool, str, str]]:
    """(marked to run, language, body) of every fenced block."""
    return [(bool(m.group("mark")), m.group("lang"), m.group("body")) for m in FENCE.finditer(README.read_text())]


def _commands(body: str) -> list[str]:
    """Shell lines of a block, continuation lines joined, comments dropped."""
    lines, cur = [], ""
    for raw in body.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip():
            lines.append(cur.strip())
        cur = ""
    return lines


def _landuse_lines() -> list[str]:
    """Every `landuse ...` command line of the README: code blocks and the commands table."""
    text = README.read_text()
    out = []
    for _run, lang, body in _blocks():
        if lang in ("bash", "sh", "console", ""):
            out += [c for c in _commands(body) if re.search(r"(^|\s|=\S+\s)landuse\s", c)]
    out += [m.group(1) for m in re.finditer(r"`((?:\w+=\S+ )*landuse [^`]+)`", text)]
    return out


def test_readme_points_at_nothing_outside_the_repository() -> None:
    text = README.read_text()
    assert "../shared" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" in target:
            continue
        assert (ROOT / target).exists(), f"README links {target}, which is not in the repository"


def test_readme_command_lines_use_real_commands_and_options() -> None:
    """Each shown `landuse CMD --opt` exists (click parses the option names), so no example
    carries a renamed or invented flag."""
    from landuse.cli import cli

    lines = _landuse_lines()
    assert len(lines) >= 15
    ctx = cli.make_context("landuse", ["--help"], resilient_parsing=True)
    for line in lines:
        words = shlex.split(line.split("|")[0])
        words = words[words.index("landuse") + 1:]
        while words and words[0].startswith("-"):  # global options (-q, -v)
            words = words[1:]
        if not words or words[0] in ("--version", "--help"):
            continue
        cmd = cli.get_command(ctx, words[0])
        assert cmd is not None, f"README shows unknown command: {line}"
        if isinstance(cmd, click.Group) and len(words) > 1:  # a command group (`landuse assess design`)
            sub = cmd.get_command(ctx, words[1])
            assert sub is not None, f"README shows unknown command: {line}"
            cmd, words = sub, [f"{words[0]} {words[1]}", *words[2:]]
        names = {n for p in cmd.params for n in (*p.opts, *getattr(p, "secondary_opts", []))}
        for w in words[1:]:
            if w.startswith("--"):
                assert w.split("=", 1)[0] in names, f"README: `landuse {words[0]}` has no option {w} ({line})"


def test_readme_sdk_snippet_defines_what_it_uses() -> None:
    """The Custom Vision SDK snippet against `landuse serve` runs as written: no undefined names."""
    import ast
    import builtins

    snippets = [body for _run, lang, body in _blocks() if lang == "python" and "CustomVisionPredictionClient" in body]
    assert snippets
    for body in snippets:
        tree = ast.parse(body)
        defined = set(dir(builtins))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert used <= defined, f"undefined in the README's SDK snippet: {sorted(used - defined)}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_readme_offline_examples_run_as_written(tmp_path: Path) -> None:
    """The blocks marked to run do, in order, in one shell, in a copy of the clone's files
    (sample_rasters, workflows), with `landuse` / `python` from this environment. The one change:
    the examples' port 8080 becomes a free port (the suite never binds a fixed port)."""
    runnable = [(lang, body) for run, lang, body in _blocks() if run]
    assert {lang for lang, _ in runnable} == {"bash", "python"}, f"README blocks marked {RUN_MARK}: {runnable}"
    for name in ("sample_rasters", "workflows"):
        shutil.copytree(ROOT / name, tmp_path / name)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for var in ("LANDUSE_CV_PREDICTION_KEY", "LANDUSE_CV_ENDPOINT", "LANDUSE_CV_PROJECT_ID", "LANDUSE_CV_PUBLISHED_NAME"):
        env.pop(var, None)
    port = str(_free_port())
    script = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for lang, body in runnable:
        body = body.replace("8080", port)
        script.append(body if lang == "bash" else f"python - <<'README_PY'\n{body}\nREADME_PY")
    res = subprocess.run(["bash", "-c", "\n".join(script) + "\n"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, f"README examples failed:\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}"
    assert (tmp_path / "out" / "report.html").exists() and (tmp_path / "out" / "change" / "change.gpkg").exists()
    # what the README says `landuse change` prints is what it printed
    shown = README.read_text().split("`landuse change` prints what it found", 1)[1].split("```", 2)[1]
    for line in shown.strip().splitlines():
        assert line.strip() in res.stdout, line
    # the SDK snippet printed the server's predictions: [('Tag', p), ...]
    assert re.search(r"\[\('(Barren|Cultivated|Developed)', [01]\.\d+\)", res.stdout), res.stdout[-2000:]
