"""`landuse run WORKFLOW.yaml`: run a declarative job (train? -> classify periods -> change -> report)."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.cli import options as o


@click.command("run")
@click.argument("workflow", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the commands the workflow runs, run nothing.")
@o.overwrite_with("Replace the periods' finished runs (atomically), e.g. made with an earlier model.")
@click.pass_context
def command(ctx: click.Context, workflow: Path, dry_run: bool, overwrite: bool) -> None:
    """Run WORKFLOW (YAML). Finished steps are reused: a rerun continues where it stopped."""
    from landuse.api.workflows import plan, run

    if dry_run:
        for step in plan(workflow, overwrite=overwrite)[1]:
            click.echo(f"# {step.title}\n{step.command}")
        return
    quiet = o.is_quiet(ctx)
    res = run(workflow, overwrite=overwrite,
              progress=None if quiet else (lambda text: click.secho(text, bold=text.startswith("["))))
    click.echo("")
    click.echo(res.describe())
