"""Command-line start-up, measured in fresh processes: every ``--help`` and ``encoder inspect``.

Targets: ``seqae --help`` and every ``--help`` under 0.5 s, ``encoder inspect`` under
1 s. Each command runs ``--repeats`` times in a new interpreter (the cost a user pays on every call);
the best and median wall times are printed with their ratio to the target. Also printed: the
seconds of ``import torch`` alone, for scale.

Usage: python scripts/bench_cli.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HELPS = [[], ["encoder"], ["encoder", "train"], ["encoder", "encode"], ["encoder", "inspect"],
         ["encoder", "export"], ["encoder", "drift"],
         ["classifier"], ["classifier", "train"], ["classifier", "predict"], ["classifier", "evaluate"],
         ["pipeline"], ["pipeline", "compare"], ["pipeline", "score"], ["pipeline", "demo"], ["pipeline", "serve"],
         ["pipeline", "replay"]]
SEQAE = [sys.executable, "-c", "import sys; from pipelines.cli import main; main(sys.argv[1:], prog_name='seqae')"]


def wall(argv: list[str], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` runs of ``argv``, each in a fresh process (failures raise)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def trained_encoder(directory: Path) -> Path:
    """A tiny encoder to inspect."""
    import numpy as np
    import pandas as pd

    from encoder import EncoderConfig, SequenceEncoder
    rng = np.random.default_rng(0)
    events = pd.DataFrame({"id": np.repeat(np.arange(20), 5), "t": np.tile(np.arange(5.0), 20),
                           "x": rng.normal(size=100)})
    cfg = EncoderConfig.of(hidden_size=8, latent_dim=4, epochs=1)
    return SequenceEncoder("id", "t", None, cfg).fit(events).save(directory / "enc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch_s = wall([sys.executable, "-c", "import torch"], args.repeats)
    label = 'python -c "import torch"'
    print(f"{label:42s} best {min(torch_s):.2f} s   (for scale)")
    rows = [(" ".join(["seqae", *cmd, "--help"]), [*SEQAE, *cmd, "--help"], 0.5) for cmd in HELPS]
    with tempfile.TemporaryDirectory() as tmp:
        enc = trained_encoder(Path(tmp))
        rows.append(("seqae encoder inspect ENC", [*SEQAE, "encoder", "inspect", str(enc)], 1.0))
        worst = 0.0
        for name, argv, target in rows:
            t = wall(argv, args.repeats)
            ratio = statistics.median(t) / target
            worst = max(worst, ratio)
            print(f"{name:42s} best {min(t):.2f} s  median {statistics.median(t):.2f} s  "
                  f"median/target {ratio:.2f} ({'OK' if ratio <= 1 else 'OVER'} {target} s)")
    print(f"worst median/target: {worst:.2f}")


if __name__ == "__main__":
    main()
