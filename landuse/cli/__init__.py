"""The ``landuse`` command group. One module per command, imported only when that command runs."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from landuse import __version__
from landuse.errors import LanduseError

# command name -> module under landuse.cli holding a click command named ``command``
COMMANDS: dict[str, str] = {
    "grid": "grid",
    "tile": "tile",
    "samples": "samples",
    "predict": "predict",
    "evaluate": "evaluate",
    "train": "train",
    "classify": "classify",
    "change": "change",
    "report": "report",
    "serve": "serve",
    "parity": "parity",
    "dataset": "dataset",
    "review": "review",
    "label": "label",
    "run": "run",
    "assess": "assess",
    "search": "search",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (keeps ``landuse --help`` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, mod in COMMANDS.items() if _module_exists(mod))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        mod = COMMANDS.get(cmd_name)
        if mod is None or not _module_exists(mod):
            return None
        return importlib.import_module(f"landuse.cli.{mod}").command


def _module_exists(mod: str) -> bool:
    return importlib.util.find_spec(f"landuse.cli.{mod}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="landuse")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Land use from aerial imagery on a stable 224 m plot grid."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Dask sets its own loggers to INFO when `distributed` is imported (later, lazily): tell it
    # through its config environment, and set the levels now for an already imported Dask.
    dask_level = logging.DEBUG if verbose >= 2 else max(level, logging.WARNING)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", logging.getLevelName(dask_level).lower())
    for name in ("distributed", "dask", "tornado", "bokeh"):
        logging.getLogger(name).setLevel(dask_level)
    if not verbose:
        # GDAL libraries without a Python error handler (pyogrio's) print "ERROR 1: ..." lines
        # on stderr besides the exception they raise: the one-line error says it already
        os.environ.setdefault("CPL_LOG", os.devnull)
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet


def main(argv: list[str] | None = None) -> int:
    """Entry point: LanduseError -> one line on stderr, exit 1; usage errors exit 2."""
    try:
        cli.main(args=argv, prog_name="landuse", standalone_mode=False)
    except LanduseError as exc:
        from landuse.cli.options import cli_message

        click.echo(f"landuse: error: {cli_message(exc)}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("landuse: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("landuse: interrupted", err=True)
        return 130
    except OSError as exc:
        # a write that ran out of space / hit a read-only or forbidden folder, wherever it was
        from landuse.store import write_error, write_problem

        if write_problem(exc) is None:
            raise
        click.echo(f"landuse: error: {write_error(exc.filename or 'an output', exc)}", err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run_main() -> None:
    """Console-script wrapper around :func:`main`."""
    sys.exit(main())
