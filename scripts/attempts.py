"""The command line shared by the attempt scripts (``attempt_*.py``): run an attempt on UCR/UEA sets
and seeds, one JSON line per run, then print its summary table."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ucr_data import BUNDLED, ucr_events


def attempt_main(description: str, run_once, summary, seeds: str) -> None:
    """``run_once(name, train, test, seed) -> record`` for every set and seed asked for (the tuning
    sets, ``ucr_data.BUNDLED``, by default), each record printed and appended to ``--json``; then
    ``summary(records) -> str``. ``--summary --json FILE`` prints the table of a file and runs nothing."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("sets", nargs="?", default="all")
    ap.add_argument("--seeds", default=seeds)
    ap.add_argument("--json", help="append one JSON line per set and seed here; with --summary, read them")
    ap.add_argument("--summary", action="store_true", help="print the table of the --json file and stop")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.summary:
        print(summary([json.loads(line) for line in Path(args.json).read_text().splitlines() if line.strip()]))
        return
    torch.set_num_threads(args.threads)
    sets = BUNDLED if args.sets == "all" else args.sets.split(",")
    records = []
    for name in sets:
        train, test = ucr_events(name, "train"), ucr_events(name, "test")
        for seed in (int(s) for s in args.seeds.split(",")):
            record = run_once(name, train, test, seed)
            records.append(record)
            print(json.dumps(record), flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(record) + "\n")
    print(summary(records))
