"""What every seqae command shares: one-line errors with exit 1, and common option helpers."""
from __future__ import annotations

import sys
import traceback
import warnings

import click

from encoder.io.errors import SeqaeError, SeqaeWarning


def _one_line_warnings(show_other):
    """A ``warnings.showwarning`` printing project warnings as ``warning: <message>``, others via ``show_other``."""
    def show(message, category, *args, **kwargs) -> None:
        if issubclass(category, SeqaeWarning):
            click.echo(f"warning: {message}", err=True)
        else:
            show_other(message, category, *args, **kwargs)
    return show


class SeqaeGroup(click.Group):
    """A click group that turns project errors into ``error: <message>`` and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warnings(warnings.showwarning)
                warnings.simplefilter("always", SeqaeWarning)
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)
        except SeqaeError as exc:
            self._fail(ctx, str(exc))
        except OSError as exc:
            self._fail(ctx, f"{exc.strerror or exc}: '{exc.filename}'" if exc.filename else str(exc))
        except Exception as exc:  # a bug, not bad input: still one line unless --verbose
            self._fail(ctx, f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)")

    @staticmethod
    def _fail(ctx: click.Context, message: str) -> None:
        root = ctx.find_root()
        if (root.obj or {}).get("verbose"):
            traceback.print_exc(file=sys.stderr)
        click.echo(f"error: {message.splitlines()[0] if message else 'failed'}", err=True)
        ctx.exit(1)


def names_option(flag: str, help_text: str):
    """A repeatable, comma-separated list of column names."""
    return click.option(flag, multiple=True, metavar="COLS", help=help_text + " (repeatable or comma-separated)")


overwrite_option = click.option("--overwrite", is_flag=True, help="Replace an existing output.")


def engine_options(f):
    """``--engine local|dask`` with the Dask cluster to use (``--scheduler`` or ``--workers``) and
    ``--partitions``; the command gets one ``engine`` dict (None for the local engine)."""
    def check(ctx, param, value):
        if value is None:
            return None
        engine = ctx.params.get("engine") or "local"
        if engine != "dask":
            raise click.BadParameter(f"only applies with --engine dask (got --engine {engine})")
        return value
    options = [
        click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                     is_eager=True, help="local: one process; dask: one task per partition of whole entities, "
                                         "output written as a directory of Parquet files."),
        click.option("--scheduler", callback=check, help="Dask scheduler address (tcp://host:8786) [a local cluster]."),
        click.option("--workers", type=click.IntRange(min=1), callback=check,
                     help="Worker processes of the local Dask cluster [2]."),
        click.option("--partitions", type=click.IntRange(min=1), callback=check,
                     help="Partitions of whole entities [those of the input]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def check_cluster(scheduler: str | None, workers: int | None) -> None:
    """``--scheduler`` (an existing cluster) and ``--workers`` (a local one) exclude each other."""
    if scheduler and workers:
        raise click.UsageError("give --scheduler (an existing cluster) or --workers (a local one), not both")
