"""Encoder performance, measured in one run with one thread count, printed as ratios.

0. the random-kernel block (``RandomKernelFeatures``) against aeon's ``MiniRocket`` transform
   (numba) on the same equal-length series, same number of features (2,520), best of 3 each:
   target >= 1.0 (aeon's seconds over ours) on every shape;
1. end-to-end ``encode`` throughput (parquet in, parquet out) over a raw ``nn.LSTM`` forward of
   the encoder's sizes on the same padded tensors (same batches; for event codes, one window of
   ``max_len`` per event, the forward direction), best of ``--repeats`` after a warm-up for each,
   interleaved, on entities of about 20 events and 13 input channels at default options:
   entity >= 0.5 (2,520 kernel features), >= 0.8 (none); event (causal) >= 1.0; an entity
   encoder asked for event codes is printed for information; entity also on shuffled rows. The
   encoder steps its LSTM through groups of similar length (``encoder.config.LENGTH_GROUP``) and
   codes its batches on one-core threads (``encoder.threads``); each windowed line also prints the
   ratio over a raw forward batched the same way, on torch's threads and on one-core threads, so
   the gains from less padding and from the threads and the cost of everything else can be told
   apart; and the CPU seconds of an encode, with the ratio it would reach if every core computed
   all the time (the raw forward's seconds over the CPU seconds per core): no scheduling can beat it;
2. training throughput of ``fit`` over a bare PyTorch loop doing the same forward/backward on the
   same batches: target >= 0.8;
3. peak RSS of ``encode`` on an input 1x and 10x in size, against 2.5 x the in-memory size of the
   input columns + 1 GB, each unit with an encoder trained for it.

Sections 1 and 2 run with glibc's malloc told to keep the memory it frees (``keep_freed_memory``):
otherwise a raw forward over batches of 1,024 maps its large temporaries afresh on most calls and
returns them afterwards, about 250,000 page faults a pass over the 20,000 entities, and runs at two
thirds of its speed or at full speed depending on what ran before it. The encoder's own batches
are smaller and fault little either way. The peak-RSS children (section 3) run with the usual
settings, as a user's encode does.

Usage: python scripts/bench_encode.py [--entities 20000] [--events 20] [--threads 2] [--repeats 5]
Run it alone: two jobs on 2 cores slow each other by far more than 2x.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch


def make_table(n_entities: int, events: int, seed: int = 0) -> pd.DataFrame:
    """``events`` events per entity (from events / 2 to events * 3 / 2 when ``events`` > 4): ten
    numeric columns, two categorical; with the time features, 13 numeric input channels."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(max(1, events // 2), events * 3 // 2 + 1, n_entities) if events > 4 else np.full(n_entities, events)
    n = int(sizes.sum())
    t = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # 0, 1, ... within each entity
    numeric = {f"x{j}": (rng.lognormal(size=n) if j % 3 == 1 else rng.normal(size=n)) for j in range(10)}
    return pd.DataFrame({"entity": np.repeat(np.arange(n_entities), sizes), "t": t.astype(float), **numeric,
                         "kind": rng.choice(["x", "y", "z", "w"], n), "place": rng.choice([f"p{i}" for i in range(50)], n)})


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve every allocation from its heap and never give freed memory back
    to the system (``mallopt``: M_MMAP_THRESHOLD 1 GiB, M_TRIM_THRESHOLD 2 GiB), so that no side of
    a timing pays page faults for temporaries the other side's allocations happened to release.
    False where there is no glibc."""
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))


def minor_faults() -> int:
    """Minor page faults of this process so far."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def bench_kernels(threads: int) -> None:
    """Section 0: our kernel features against aeon's MiniRocket, same series, same feature count."""
    from aeon.transformations.collection.convolution_based import MiniRocket

    from encoder.nn.kernels import RandomKernelFeatures
    for B, C, T in ((4000, 13, 20), (1000, 1, 150), (200, 3, 500)):
        X = np.random.default_rng(0).normal(size=(B, C, T)).astype(np.float32)  # aeon's (cases, channels, steps)
        x, lengths = torch.from_numpy(X).transpose(1, 2).contiguous(), torch.full((B,), T)  # ours: (B, T, C)
        ours_k = RandomKernelFeatures(C, 2520, T).fit(x[:256], lengths[:256], seed=0)
        theirs_k = MiniRocket(n_kernels=2520, n_jobs=threads, random_state=0).fit(X[:256])
        best = {"ours": np.inf, "aeon": np.inf}
        for _ in range(4):  # the first round compiles and warms up; not counted
            for name, fn in (("ours", lambda: ours_k(x, lengths)), ("aeon", lambda: theirs_k.transform(X))):
                start = time.perf_counter()
                out = fn()
                best[name] = min(best[name], time.perf_counter() - start) if _ else np.inf
            assert out.shape == (B, 2520)
        ratio = best["aeon"] / best["ours"]
        print(f"0. kernel features, {B} series x {C} channels x {T} steps, 2520 features: ours {B / best['ours']:9.0f} "
              f"series/s, aeon MiniRocket {B / best['aeon']:9.0f} series/s: ratio {ratio:.2f} (target >= 1.0) "
              f"{'OK' if ratio >= 1.0 else 'BELOW'}")


class EncodeTimes(NamedTuple):
    """One ``bench_encode``: best seconds of each side, rows written, fewest page faults of a pass
    (ours, the raw forward's) and the fewest CPU seconds of one of our passes, all threads."""

    ours: float
    raw: float
    grouped: float
    threads: float
    rows: int
    faults: tuple[int, int]
    ours_cpu: float


def bench_encode(enc, path: Path, unit: str, batch: int, out: Path, repeats: int = 5) -> EncodeTimes:
    """Seconds for encode_to_parquet, for a raw nn.LSTM forward on the same padded batches, for one
    on those batches' length groups, each cut to its longest (as the encoder batches its LSTM), and
    for one on those groups spread over one-core threads (as the encoder codes its batches).

    Each is warmed up once, then all are timed ``repeats`` times interleaved; the best time of each
    counts (as ``timeit`` does), so a noisy neighbour slows no side's figure. Also the fewest minor page
    faults of a pass, ours and the raw forward's, and the CPU seconds of our pass: with C cores no
    encode can take less than a C-th of them.
    """
    from encoder.config import LENGTH_GROUP
    from encoder.sequences import by_length, entity_end_rows, gather_windows
    from encoder.threads import one_thread_each
    data, arrays = enc.prepare(path)
    ends_all = entity_end_rows(data.starts) if unit == "entity" else np.arange(len(data.order))
    mc = enc.model_config_
    in_dim = enc.model_.encoder.step_input.out_dim
    lstm = torch.nn.LSTM(in_dim, mc.hidden_size, mc.num_layers, batch_first=True, bidirectional=mc.bidirectional).eval()
    batches, grouped = [], []

    def shape_of_group(num, cat, lengths):  # a raw input of one length group's padded shape
        grouped.append(torch.randn(num.shape[0], num.shape[1], in_dim))
        return num[:, 0, :1]  # (b, 1): by_length's return value is not used
    for i in range(0, len(ends_all), batch):
        num, cat, lengths = gather_windows(arrays, ends_all[i:i + batch], enc.max_len_)
        batches.append(torch.randn(num.shape[0], num.shape[1], in_dim))  # same padded shape as ours
        by_length(shape_of_group, num, cat, lengths, LENGTH_GROUP)  # the encoder's own groups

    def ours() -> int:
        return enc.encode_to_parquet(path, out, unit=unit, batch_size=batch, overwrite=True)

    def raw(xs=batches) -> None:
        with torch.inference_mode():
            for x in xs:
                lstm(x)

    def forward(x):  # in a worker thread: inference mode is per thread
        with torch.inference_mode():
            return lstm(x)

    def raw_threads() -> None:  # the length groups on one-core threads, as the encoder codes its batches
        for _ in one_thread_each(forward, grouped, torch.get_num_threads()):
            pass

    rows = ours()
    raw()
    raw_threads()
    times = {"ours": [], "raw": [], "grouped": [], "threads": []}
    faults = {"ours": [], "raw": []}  # minor page faults of each pass
    cpu = []  # CPU seconds of each of our passes, every thread of the process
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("raw", raw), ("grouped", lambda: raw(grouped)), ("threads", raw_threads)):
            start, before, cpu_before = time.perf_counter(), minor_faults(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            if name in faults:
                faults[name].append(minor_faults() - before)
            if name == "ours":
                cpu.append(time.process_time() - cpu_before)
    return EncodeTimes(min(times["ours"]), min(times["raw"]), min(times["grouped"]), min(times["threads"]), rows,
                       (min(faults["ours"]), min(faults["raw"])), min(cpu))


def bench_fit(table: pd.DataFrame, cfg) -> tuple[float, float]:
    """Sequences per second: our fit (training phase of each epoch) and a bare loop on the same batches."""
    from encoder import SequenceEncoder
    from encoder.nn.model import LSTMAutoencoder
    from encoder.sequences import gather_windows, valid_mask
    from encoder.training.loop import crop_contrastive_loss
    from encoder.training.losses import reconstruction_errors
    enc = SequenceEncoder("entity", "t", config=cfg).fit(table)
    ours = float(np.median(enc.history_["sequences_per_s"]))
    data, arrays = enc.prepare(table)
    from encoder.sequences import entity_end_rows
    ends = entity_end_rows(data.starts) if cfg.data.unit == "entity" else np.arange(len(data.order))
    bs = enc.training_["batch_size"]
    ends = ends[: enc.training_["n_train_sequences"]]
    batches = [gather_windows(arrays, ends[i:i + bs], enc.max_len_) for i in range(0, len(ends), bs)]
    model = LSTMAutoencoder(enc.model_config_)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    start = time.perf_counter()
    for _ in range(cfg.training.epochs):
        for num, cat, lengths in batches:
            opt.zero_grad()
            _, num_hat, logits = model(num, cat, lengths)
            loss = reconstruction_errors(num_hat, logits, num, cat, valid_mask(lengths, num.shape[1])).mean()
            if enc.config_.training.contrastive_weight > 0:  # the same two-crop contrastive term as fit
                loss = loss + enc.config_.training.contrastive_weight * crop_contrastive_loss(model.encoder, num, cat, lengths, gen)
            loss.backward()
            opt.step()
    bare = cfg.training.epochs * len(ends) / (time.perf_counter() - start)
    return ours, bare


def child_rss(enc_dir: str, path: str, unit: str) -> None:
    """Run in a subprocess: encode, then print the peak RSS in bytes."""
    from encoder import load
    with tempfile.TemporaryDirectory(prefix="seqae-bench-") as tmp:
        load(enc_dir).encode_to_parquet(path, Path(tmp) / "z.parquet", unit=unit, batch_size=1024)
    # VmHWM is this process's own peak; ru_maxrss would include the forked parent's peak
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    print(int(hwm.split()[1]) * 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=20000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", choices=["kernels", "encode"], help="run one section")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        return child_rss(*args.child)
    if args.only == "kernels":
        return bench_kernels(args.threads)
    if args.only != "encode":  # in a process of its own: aeon's numba thread pool would outlive it here
        subprocess.run([sys.executable, __file__, "--only", "kernels", "--threads", str(args.threads)], check=True)
    kept = keep_freed_memory()
    print("glibc malloc keeps freed memory (sections 1-2): "
          + ("yes" if kept else "no (not glibc): raw forwards may page-fault"))
    with tempfile.TemporaryDirectory(prefix="seqae-bench-") as work:  # inputs, outputs, encoders: gone afterwards
        bench_all(args, Path(work))


def bench_all(args, work: Path) -> None:
    """Sections 1-3 in the folder ``work``."""
    from encoder import EncoderConfig, SequenceEncoder
    table = make_table(args.entities, args.events)
    path = work / "events.parquet"
    table.to_parquet(path)
    cfg = EncoderConfig.of(epochs=1, max_sequences_per_epoch=4000, seed=0)  # defaults otherwise: training length is not measured
    print(f"input: {len(table)} events, {args.entities} entities of about {args.events}, torch threads {torch.get_num_threads()}")
    # the same rows shuffled: an export in no particular order pays for the sort that a sorted one skips
    shuffled = work / "events_shuffled.parquet"
    table.sample(frac=1.0, random_state=0).to_parquet(shuffled)
    sample = table[table.entity < 2000]
    small = work / "events_small.parquet"
    table[table.entity < args.entities // 10].to_parquet(small)
    entity = SequenceEncoder("entity", "t", config=cfg).fit(sample)
    event = SequenceEncoder("entity", "t", config=cfg.replace(unit="event")).fit(sample)
    cases = [("entity, defaults", entity, "entity", path, 0.5),
             ("entity, defaults, shuffled input", entity, "entity", shuffled, 0.5),
             ("entity, kernel_features 0", SequenceEncoder("entity", "t", config=cfg.replace(kernel_features=0)).fit(sample),
              "entity", path, 0.8),
             ("event, defaults (causal)", event, "event", path, 1.0),
             ("entity encoder asked for --unit event", entity, "event", small, None)]  # slow: a tenth of the input
    plural = {"entity": "entities", "event": "events"}
    for label, enc, unit, source, target in cases:
        ours, raw, grouped, threads, rows, faults, ours_cpu = bench_encode(enc, source, unit, 1024,
                                                                           work / f"z_{unit}.parquet", args.repeats)
        ratio = raw / ours
        verdict = "(for information)" if target is None else \
            f"(target >= {target}) {'OK' if ratio >= target else 'BELOW'}"
        same = "" if enc.model_config_.causal and unit == "event" else \
            (f"; over a raw forward in the same length groups {grouped / ours:.2f}, "  # causal: sized batches already
             f"those groups on one-core threads {threads / ours:.2f}")
        ceiling = raw / (ours_cpu / args.threads)  # the ratio if every core computed all the time
        print(f"1. encode {label:38s}: {rows / ours:9.0f} {plural[unit]}/s end to end vs {rows / raw:9.0f}/s raw "
              f"nn.LSTM forward (page faults a pass: ours {faults[0]}, raw {faults[1]}): ratio {ratio:.2f} {verdict}"
              f"{same}; {ours_cpu:.2f} CPU s a pass: on {args.threads} cores at most {ceiling:.2f}")
    fit_cfg = cfg.replace(epochs=2, unit="entity", val_fraction=0.1)
    ours, bare = bench_fit(table, fit_cfg)
    print(f"2. fit: {ours:.0f} seq/s vs bare loop {bare:.0f} seq/s: ratio {ours / bare:.2f} (target >= 0.8) "
          f"{'OK' if ours / bare >= 0.8 else 'BELOW'}")
    entity.save(work / "entity")
    event.save(work / "event")  # each unit's peak with the encoder trained for it
    for scale in (1, 10):
        big = work / f"events_{scale}x.parquet"
        t = make_table(args.entities * scale, args.events, seed=scale)
        t.to_parquet(big)
        mem = t.memory_usage(deep=True, index=False).sum()
        del t
        for unit in ("entity", "event"):
            out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child",
                                  str(work / unit), str(big), unit], capture_output=True, text=True, check=True)
            rss = int(out.stdout.strip().splitlines()[-1])
            bound = 2.5 * mem + 2 ** 30
            print(f"3. peak RSS {scale:2d}x --unit {unit:6s}: {rss / 2**20:7.0f} MiB; input columns {mem / 2**20:6.0f} MiB; "
                  f"bound 2.5x + 1 GiB = {bound / 2**20:6.0f} MiB: ratio {rss / bound:.2f} {'OK' if rss <= bound else 'ABOVE'}")


if __name__ == "__main__":
    main()
