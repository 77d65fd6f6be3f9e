"""What the command-line tests share: one call of the ``seqae`` root group, and fast compare options."""
from click.testing import CliRunner

from pipelines.cli import main

FAST = ["--epochs", "1", "--bootstrap", "20", "--max-len", "8", "--latent-dim", "4"]


def run(*args):
    """``seqae ARGS...`` in-process; every argument turned into a string."""
    return CliRunner().invoke(main, [str(a) for a in args])


def simulated_compare(d, accounts: int, days: int, seed: int, events_path=None, options=()):
    """Simulate fraud-style events into ``d/events.parquet`` (or write them with ``events_path(frame)``)
    and run a fast ``pipeline compare`` (plus ``options``) on them into ``d/report``; returns ``d``."""
    from pipelines.simulate.demo import simulate_events
    frame = simulate_events(accounts, days=days, seed=seed, fraud_share=0.5)
    source = events_path(frame) if events_path else d / "events.parquet"
    if not events_path:
        frame.to_parquet(source)
    r = run("pipeline", "compare", source, "--id", "account", "--time", "ts", "--label", "is_fraud",
            "--out", d / "report", *FAST, *options)
    assert r.exit_code == 0, r.output
    (d / "output.txt").write_text(r.output)
    return d
