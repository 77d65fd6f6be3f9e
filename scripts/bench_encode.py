"""Encoder performance, measured in one run with one thread count, printed as ratios.

1. end-to-end ``encode`` throughput (parquet in, parquet out) over a raw ``nn.LSTM`` forward on
   the same padded tensors (same batches, sizes and layers), best of 15 (entity, a pass takes
   0.1 s) or 3 (event, 10 s) after a warm-up for each, interleaved:
   targets >= 0.8 (entity), >= 0.6 (event); entity also on the same rows shuffled (unsorted input);
2. training throughput of ``fit`` over a bare PyTorch loop doing the same forward/backward on the
   same batches: target >= 0.8;
3. peak RSS of ``encode`` on an input 1x and 10x in size, against 2.5 x the in-memory size of the
   input columns + 1 GB.

Usage: python scripts/bench_encode.py [--entities 2000] [--events 64] [--threads 2]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def make_table(n_entities: int, events: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_entities * events
    return pd.DataFrame({
        "entity": np.repeat(np.arange(n_entities), events), "t": np.tile(np.arange(events, dtype=float), n_entities),
        "a": rng.normal(size=n), "b": rng.lognormal(size=n), "c": rng.normal(size=n),
        "kind": rng.choice(["x", "y", "z", "w"], n), "place": rng.choice([f"p{i}" for i in range(50)], n)})


def bench_encode(enc, path: Path, unit: str, batch: int, out: Path, repeats: int = 5) -> tuple[float, float, int]:
    """Seconds for encode_to_parquet, seconds for a raw nn.LSTM forward on the same padded batches.

    Both are warmed up once, then timed ``repeats`` times interleaved; the best time of each counts
    (as ``timeit`` does), so a noisy neighbour slows neither side's figure.
    """
    from encoder.sequences import entity_end_rows, gather_windows
    data, arrays = enc.prepare(path)
    ends_all = entity_end_rows(data.starts) if unit == "entity" else np.arange(len(data.order))
    mc = enc.model_config_
    in_dim = enc.model_.encoder.step_input.out_dim
    lstm = torch.nn.LSTM(in_dim, mc.hidden_size, mc.num_layers, batch_first=True, bidirectional=mc.bidirectional).eval()
    batches = []
    for i in range(0, len(ends_all), batch):
        num, cat, lengths = gather_windows(arrays, ends_all[i:i + batch], enc.max_len_)
        batches.append(torch.randn(num.shape[0], num.shape[1], in_dim))  # same padded shape as ours

    def ours() -> int:
        return enc.encode_to_parquet(path, out, unit=unit, batch_size=batch, overwrite=True)

    def raw() -> None:
        with torch.inference_mode():
            for x in batches:
                lstm(x)

    rows = ours()
    raw()
    times = {"ours": [], "raw": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("raw", raw)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return min(times["ours"]), min(times["raw"]), rows


def bench_fit(table: pd.DataFrame, cfg) -> tuple[float, float]:
    """Sequences per second: our fit (training phase of each epoch) and a bare loop on the same batches."""
    from encoder import SequenceEncoder
    from encoder.losses import reconstruction_errors
    from encoder.model import LSTMAutoencoder
    from encoder.sequences import gather_windows, valid_mask
    from encoder.training import crop_contrastive_loss
    enc = SequenceEncoder("entity", "t", config=cfg).fit(table)
    ours = float(np.median(enc.history_["sequences_per_s"]))
    data, arrays = enc.prepare(table)
    from encoder.sequences import entity_end_rows
    ends = entity_end_rows(data.starts) if cfg.unit == "entity" else np.arange(len(data.order))
    bs = enc.training_["batch_size"]
    ends = ends[: enc.training_["n_train_sequences"]]
    batches = [gather_windows(arrays, ends[i:i + bs], enc.max_len_) for i in range(0, len(ends), bs)]
    model = LSTMAutoencoder(enc.model_config_)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        for num, cat, lengths in batches:
            opt.zero_grad()
            _, num_hat, logits = model(num, cat, lengths)
            loss = reconstruction_errors(num_hat, logits, num, cat, valid_mask(lengths, num.shape[1])).mean()
            if enc.config_.contrastive_weight > 0:  # the same two-crop contrastive term as fit
                loss = loss + enc.config_.contrastive_weight * crop_contrastive_loss(model.encoder, num, cat, lengths, gen)
            loss.backward()
            opt.step()
    bare = cfg.epochs * len(ends) / (time.perf_counter() - start)
    return ours, bare


def child_rss(enc_dir: str, path: str, unit: str) -> None:
    """Run in a subprocess: encode, then print the peak RSS in bytes."""
    from encoder import load
    out = Path(tempfile.mkdtemp()) / "z.parquet"
    load(enc_dir).encode_to_parquet(path, out, unit=unit, batch_size=1024)
    # VmHWM is this process's own peak; ru_maxrss would include the forked parent's peak
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    print(int(hwm.split()[1]) * 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=2000)
    ap.add_argument("--events", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        return child_rss(*args.child)
    from encoder import EncoderConfig, SequenceEncoder
    work = Path(tempfile.mkdtemp(prefix="seqae-bench-"))
    table = make_table(args.entities, args.events)
    path = work / "events.parquet"
    table.to_parquet(path)
    cfg = EncoderConfig(epochs=1, max_len=args.events, hidden_size=64, latent_dim=32, batch_size=256,
                        max_sequences_per_epoch=20000, seed=0)
    print(f"input: {len(table)} events, {args.entities} entities x {args.events}, torch threads {torch.get_num_threads()}")
    # the same rows shuffled: an export in no particular order pays for the sort that a sorted one skips
    shuffled = work / "events_shuffled.parquet"
    table.sample(frac=1.0, random_state=0).to_parquet(shuffled)
    for unit, target in (("entity", 0.8), ("event", 0.6)):
        enc = SequenceEncoder("entity", "t", config=cfg.replace(unit=unit)).fit(
            table if unit == "entity" else table[table.entity < 50])
        sources = [(path, "sorted input")] + ([(shuffled, "shuffled input")] if unit == "entity" else [])
        for source, label in sources:
            ours, raw, rows = bench_encode(enc, source, unit, 1024, work / f"z_{unit}.parquet",
                                           repeats=15 if unit == "entity" else 3)
            ratio = raw / ours
            print(f"1. encode --unit {unit:6s} ({label:14s}): {rows / ours:9.0f} seq/s end to end vs "
                  f"{rows / raw:9.0f} seq/s raw nn.LSTM forward: ratio {ratio:.2f} (target >= {target}) "
                  f"{'OK' if ratio >= target else 'BELOW'}")
    fit_cfg = cfg.replace(epochs=2, unit="entity", val_fraction=0.1)
    ours, bare = bench_fit(table, fit_cfg)
    print(f"2. fit: {ours:.0f} seq/s vs bare loop {bare:.0f} seq/s: ratio {ours / bare:.2f} (target >= 0.8) "
          f"{'OK' if ours / bare >= 0.8 else 'BELOW'}")
    enc = SequenceEncoder("entity", "t", config=cfg.replace(unit="entity")).fit(table[table.entity < 200])
    enc.save(work / "enc")
    for scale in (1, 10):
        big = work / f"events_{scale}x.parquet"
        t = make_table(args.entities * scale, args.events, seed=scale)
        t.to_parquet(big)
        mem = t.memory_usage(deep=True, index=False).sum()
        del t
        for unit in ("entity", "event"):
            out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child",
                                  str(work / "enc"), str(big), unit], capture_output=True, text=True, check=True)
            rss = int(out.stdout.strip().splitlines()[-1])
            bound = 2.5 * mem + 2 ** 30
            print(f"3. peak RSS {scale:2d}x --unit {unit:6s}: {rss / 2**20:7.0f} MiB; input columns {mem / 2**20:6.0f} MiB; "
                  f"bound 2.5x + 1 GiB = {bound / 2**20:6.0f} MiB: ratio {rss / bound:.2f} {'OK' if rss <= bound else 'ABOVE'}")


if __name__ == "__main__":
    main()
