"""Export a fitted encoder for another runtime: the network as ONNX, and a JSON description of the
inputs it needs (``preprocessing.json``), so a JVM or C++ scoring service reproduces the codes.

The ONNX graph maps padded inputs to codes:

- ``num``: float32 (batch, steps, F_num), the numeric input channels (``preprocessing.json``);
- ``cat``: int64 (batch, steps, F_cat), vocabulary indices (0 = padding, 1 = unknown);
- ``lengths``: int64 (batch,), each row's valid steps (1 .. steps): its events, oldest first,
  right-padded with zeros, which the graph never reads;
- an encoder without categorical columns has no ``cat`` input (``preprocessing.json`` lists the
  graph's inputs);
- output ``code``: float32 (batch, code_dim), the ``z_*`` columns that ``seqae encoder encode`` writes.

Batch and steps are dynamic axes. The graph has the ``encoder_id`` (and the unit, ``max_len``,
code size) in its metadata. Which events a row holds is the description's ``sequences`` rule: an
entity code reads the entity's latest ``max_len`` events; a causal event code the event and all
earlier events of its entity.
"""
from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

from encoder.io.artifacts import write_json
from encoder.io.atomic import atomic_output
from encoder.io.errors import InputError
from encoder.preprocessing import CLIP, MISSING_TOKEN, PAD, UNKNOWN

ONNX_FILE = "encoder.onnx"
SPEC_FILE = "preprocessing.json"
SPEC_FORMAT_VERSION = 1
OPSET = 17


def _onnx():
    try:
        import onnx
    except ImportError:
        raise InputError("ONNX export needs onnx: pip install 'seqae[onnx]'") from None
    return onnx


def export_onnx(encoder, out: str | Path, overwrite: bool = False) -> Path:
    """Write ``out/encoder.onnx`` and ``out/preprocessing.json`` for a fitted ``SequenceEncoder``
    (atomically: a failed export leaves no directory)."""
    import torch
    onnx = _onnx()
    net = copy.deepcopy(encoder.model_.encoder).float().eval()
    mc = encoder.model_config_
    T = 2 * mc.patch + 1  # example: a full row and a 1-event row; batch and steps stay dynamic
    example = (torch.zeros(2, T, mc.n_numeric), torch.ones(2, T, len(mc.cardinalities), dtype=torch.long),
               torch.tensor([T, 1]))  # (B, T, F_num), (B, T, F_cat), (B,)
    axes = {"num": {0: "batch", 1: "steps"}, "cat": {0: "batch", 1: "steps"}, "lengths": {0: "batch"},
            "code": {0: "batch"}}
    with atomic_output(out, overwrite, directory=True) as tmp:
        with warnings.catch_warnings(), _quiet("torch.onnx"), torch.inference_mode(False):
            warnings.simplefilter("ignore")  # the tracing exporter: torch.export fixes the steps of a
            # second LSTM (the backward direction) to the example's; tracing keeps them dynamic
            torch.onnx.export(net, example, str(tmp / ONNX_FILE), input_names=["num", "cat", "lengths"],
                              output_names=["code"], opset_version=OPSET, dynamo=False, dynamic_axes=axes)
        model = onnx.load(str(tmp / ONNX_FILE))
        present = {i.name for i in model.graph.input}  # an input the network never reads (no categorical
        # columns: cat is (B, T, 0)) is left out of the graph by the exporter; the description follows it
        meta = {"encoder_id": encoder.encoder_id, "producer": "seqae", "unit": encoder.config_.data.unit,
                "max_len": str(encoder.max_len_), "code_dim": str(mc.code_dim), "description": SPEC_FILE}
        del model.metadata_props[:]
        for k, v in meta.items():
            model.metadata_props.add(key=k, value=v)
        onnx.save(model, str(tmp / ONNX_FILE))
        spec = input_description(encoder)
        spec["inputs"] = {k: v for k, v in spec["inputs"].items() if k in present}
        write_json(tmp / SPEC_FILE, spec)
    return Path(out)


class _quiet:
    """Silence a logger (torch's exporter reports every stage at INFO and WARNING level)."""

    def __init__(self, name: str):
        self.logger = logging.getLogger(name)

    def __enter__(self):
        self.level, self.logger.level = self.logger.level, logging.ERROR

    def __exit__(self, *exc):
        self.logger.level = self.level


def input_description(encoder) -> dict:
    """What another runtime needs to build ``num``, ``cat`` and ``lengths`` from raw events the way
    ``Preprocessor.transform`` and ``gather_windows`` do, and what the output columns are."""
    pre, cfg, mc, s = encoder.preprocessor_, encoder.config_, encoder.model_config_, encoder.schema_
    causal_events = cfg.data.unit == "event" and mc.causal
    return {
        "format": "seqae-onnx-encoder", "format_version": SPEC_FORMAT_VERSION, "encoder_id": encoder.encoder_id,
        "onnx": ONNX_FILE, "opset": OPSET,
        "inputs": {
            "num": {"dtype": "float32", "shape": ["batch", "steps", len(pre.numeric_channels)],
                    "channels": pre.numeric_channels},
            "cat": {"dtype": "int64", "shape": ["batch", "steps", len(pre.categorical)], "columns": list(pre.categorical)},
            "lengths": {"dtype": "int64", "shape": ["batch"],
                        "rule": "valid steps per row, >= 1; steps past a row's length are padding (num 0, cat 0)"},
        },
        "output": {"name": "code", "dtype": "float32", "shape": ["batch", mc.code_dim],
                   "columns": [f"z_{k}" for k in range(mc.code_dim)], "layout": encoder.code_layout()},
        "sequences": {
            "id": s.id_col, "time": s.time_col, "unit": cfg.data.unit, "max_len": encoder.max_len_,
            "order": "an entity's events sorted by time (stable), oldest first, padding after them",
            "rule": ("the code after an event reads that event and every earlier event of its entity, "
                     "however many (a causal encoder: steps may exceed max_len)") if causal_events else
                    (f"the code reads the latest max_len = {encoder.max_len_} events of the entity "
                     "(for unit event: up to and including the event); earlier events are left out"),
            "time_seconds": "timestamps as seconds since the Unix epoch (UTC); numeric times as given",
        },
        "numeric": [{"column": c, "signed_log": st["log"], "center": st["center"], "scale": st["scale"],
                     "missing_indicator": st["missing_indicator"]} for c, st in pre.numeric_.items()],
        "numeric_rule": (f"v = sign(x) * log1p(|x|) if signed_log else x; channel = clip((v - center) / scale, "
                         f"-{CLIP}, {CLIP}); a missing x gives 0, and 1 in channel '<column>__missing' when "
                         "missing_indicator (else that channel is absent)"),
        "clip": CLIP,
        "time_gap": None if pre.gap_ is None else {
            "channel": "__time_gap", "center": pre.gap_["center"], "scale": pre.gap_["scale"],
            "rule": f"g = log1p(max(t - t_previous, 0)) in seconds, 0 for an entity's first event; "
                    f"channel = clip((g - center) / scale, -{CLIP}, {CLIP})"},
        "categorical": [{"column": c, "vocabulary": pre.vocab_[c]} for c in pre.categorical],
        "categorical_rule": (f"the value as a string (a missing value is '{MISSING_TOKEN}'; numbers as Python "
                             f"str()); index = {UNKNOWN + 1} + position in vocabulary, {UNKNOWN} when not in it, "
                             f"{PAD} for padding"),
        "novelty": {"channels": [f"{c}__new" for c in pre.categorical],
                    "rule": "1.0 when the event's value (string) did not occur in its entity's earlier events, "
                            "0.0 otherwise and on an entity's first event"} if cfg.data.novelty else None,
        "engineered": {
            "diffs": bool(cfg.data.diffs), "lags": list(cfg.data.lags), "rolling": list(cfg.data.rolling),
            "rule": "on the scaled numeric channels (before indicators), within the entity: '<c>__diff' = value "
                    "- previous value (0 on the first event); '<c>__lag<k>' = the value k events back (0 when "
                    "there is none); '<c>__mean<k>' = mean over the latest k events, the event included"},
        "channel_order": "num channels in the order of inputs.num.channels: numeric columns, missing indicators, "
                         "__time_gap, novelty, diffs, lags, rolling means",
    }
