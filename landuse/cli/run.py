"""`landuse run WORKFLOW.yaml`: run a declarative job (train? -> classify periods -> change -> report)."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import click

from landuse.errors import LanduseError


@click.command("run")
@click.argument("workflow", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the commands the workflow runs, run nothing.")
@click.pass_context
def command(ctx: click.Context, workflow: Path, dry_run: bool) -> None:
    """Run WORKFLOW (YAML). Finished steps are reused: a rerun continues where it stopped."""
    from landuse.cli import cli
    from landuse.workflow import load_workflow, plan, resolve

    wf, base = load_workflow(workflow)
    steps = plan(wf, base)
    if dry_run:
        for title, args in steps:
            click.echo(f"# {title}\nlanduse {shlex.join(args)}")
        return
    quiet = bool((ctx.obj or {}).get("quiet"))
    prefix = ["-q"] if quiet else []
    out = Path(resolve(base, wf.output))
    t0 = time.perf_counter()
    for i, (title, args) in enumerate(steps, 1):
        if not quiet:
            click.secho(f"[{i}/{len(steps)}] {title}", bold=True)
        try:
            cli.main(args=prefix + args, prog_name="landuse", standalone_mode=False)
        except LanduseError as exc:
            raise type(exc)(f"workflow {workflow} step '{title}': {exc}") from None
    change = out / "change" / "summary.json"
    report = out / wf.report.file
    click.echo("")
    click.secho(f"{wf.name}: done in {time.perf_counter() - t0:.0f} s; outputs in {out}/", bold=True)
    if change.exists():
        s = json.loads(change.read_text())
        u = s["urbanization"]
        if u.get("tag"):
            click.echo(f"Urbanization {s['periods'][0]} -> {s['periods'][1]}: {u['total_ha']:.1f} ha became {u['tag']} "
                       f"(confident; up to {u.get('upper_bound_ha', u['total_ha']):.1f} ha with the uncertain plots)")
            for src, ha in u["by_source_ha"].items():
                click.echo(f"  {src:>12} -> {u['tag']}: {ha:8.1f} ha ({u['by_source_plots'][src]} plots)")
    if wf.report.enabled and report.exists():
        click.echo(f"Report: {report}")
