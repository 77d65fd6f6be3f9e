"""ONNX export: onnxruntime on the exported graph gives seqae's own codes, from inputs built by
seqae or by the exported description alone; the ``encoder export`` command."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from cli_helpers import run
from conftest import make_events

from encoder import EncoderConfig, SequenceEncoder
from encoder.sequences import EventArrays, entity_end_rows, gather_windows

MAX_LEN = 8
pytestmark = pytest.mark.filterwarnings("ignore::encoder.io.errors.TruncationWarning")  # sequences beyond MAX_LEN on purpose


@pytest.fixture(scope="module", params=[("entity", {}), ("event", {}),
                                        ("entity", {"patch": 3, "num_layers": 2, "conv_dim": 3, "conv_depth": 2, "segments": 2}),
                                        ("entity", {"drop": ("channel",)})],
                ids=["entity", "event", "entity-patch3-2layers-conv-segments", "entity-numeric-only"])
def exported(request, tmp_path_factory):
    """An encoder of each unit (entity: bidirectional, max pooling, also 3 events per step, 2
    layers, the convolution branch and segment maxima, also without categorical columns; event: causal with
    surprise) on sequences of 1 to 20 events, saved and exported with the CLI."""
    unit, options = request.param
    options = dict(options)
    drop = options.pop("drop", ())
    d = tmp_path_factory.mktemp(f"export_{unit}")
    events = make_events(16, seed=1, min_len=2, max_len=20)
    events = pd.concat([events, events.iloc[:1].assign(account="solo")], ignore_index=True)  # a 1-event entity
    cfg = EncoderConfig.of(unit=unit, max_len=MAX_LEN, hidden_size=8, latent_dim=4, epochs=2, batch_size=4,
                           min_batches_per_epoch=2, seed=0, **options)
    enc = SequenceEncoder("account", "ts", "label", cfg, drop=drop).fit(events)
    enc.save(d / "enc")
    r = run("encoder", "export", d / "enc", "--format", "onnx", "--out", d / "onnx")
    assert r.exit_code == 0, r.output
    return enc, events, d


def _session(d):
    return ort.InferenceSession(str(d / "onnx" / "encoder.onnx"), providers=["CPUExecutionProvider"])


def _run(session, num, cat, lengths):
    """The graph on padded inputs; ``cat`` only when the graph has it (an encoder with categorical columns)."""
    feed = {"num": np.asarray(num, np.float32), "cat": np.asarray(cat, np.int64), "lengths": np.asarray(lengths, np.int64)}
    return session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]


def test_onnx_codes_equal_transform_on_variable_length_batches(exported):
    enc, events, d = exported
    session = _session(d)
    data, arrays = enc.prepare(events)
    codes = enc.transform(events).filter(like="z_").to_numpy()  # (rows, K): entities by id, or events in input order
    if enc.config_.data.unit == "entity":
        ends, window = entity_end_rows(data.starts), MAX_LEN  # each entity's latest max_len events
        expected = codes
    else:
        ends, window = np.arange(len(data.order)), len(data.order)  # every event with its whole history
        expected = codes[data.order]  # sorted (entity, time) order
    num, cat, lengths = gather_windows(arrays, ends, window)
    assert lengths.min() == 1 and lengths.max() >= MAX_LEN  # length 1, max_len and (event unit) beyond
    got = _run(session, num, cat, lengths)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4
    for rows in (np.flatnonzero(lengths.numpy() == 1), np.flatnonzero(lengths.numpy() == MAX_LEN)):  # one length a batch
        n, c, l = gather_windows(arrays, ends[rows], window)
        assert np.abs(_run(session, n, c, l) - expected[rows]).max() <= 1e-4


def test_onnx_metadata_names_the_encoder(exported):
    enc, _, d = exported
    meta = {p.key: p.value for p in onnx.load(str(d / "onnx" / "encoder.onnx")).metadata_props}
    assert meta["encoder_id"] == enc.encoder_id and meta["max_len"] == str(MAX_LEN)
    spec = json.loads((d / "onnx" / "preprocessing.json").read_text())
    assert spec["encoder_id"] == enc.encoder_id
    assert set(spec["inputs"]) == {i.name for i in _session(d).get_inputs()}
    assert ("cat" in spec["inputs"]) == bool(enc.schema_.categorical)
    assert spec["inputs"]["num"]["channels"] == enc.preprocessor_.numeric_channels
    assert spec["output"]["columns"] == [f"z_{k}" for k in range(enc.model_config_.code_dim)]


def test_description_alone_rebuilds_the_inputs(exported):
    """A reader of preprocessing.json (here NumPy, as another runtime would) builds the graph's
    inputs from raw events and gets the same codes."""
    enc, events, d = exported
    spec = json.loads((d / "onnx" / "preprocessing.json").read_text())
    frame = events.sort_values(["account", "ts"], kind="stable").reset_index(drop=True)
    first = ~frame["account"].duplicated().to_numpy()
    channels = {}
    for st in spec["numeric"]:
        x = frame[st["column"]].to_numpy(np.float64)
        v = np.sign(x) * np.log1p(np.abs(x)) if st["signed_log"] else x
        channels[st["column"]] = np.where(np.isnan(x), 0.0, np.clip((v - st["center"]) / st["scale"], -20, 20))
        if st["missing_indicator"]:
            channels[st["column"] + "__missing"] = np.isnan(x).astype(float)
    gap = spec["time_gap"]
    t = frame["ts"].to_numpy(np.float64)
    g = np.where(first, 0.0, np.log1p(np.maximum(t - np.r_[t[:1], t[:-1]], 0.0)))
    channels["__time_gap"] = np.clip((g - gap["center"]) / gap["scale"], -20, 20)
    cats = []
    for st in spec["categorical"]:
        values = frame[st["column"]].astype(str).to_numpy()
        pos = {v: k for k, v in enumerate(st["vocabulary"])}
        cats.append([pos[v] + 2 if v in pos else 1 for v in values])
        seen = frame.groupby(["account", st["column"]]).cumcount().to_numpy()
        channels[st["column"] + "__new"] = ((seen == 0) & ~first).astype(float)
    num = np.stack([channels[c] for c in spec["inputs"]["num"]["channels"]], axis=1).astype(np.float32)
    cat = np.stack(cats, axis=1) if cats else np.zeros((len(frame), 0), np.int64)
    arrays = EventArrays(num, cat, np.repeat(np.flatnonzero(first), np.diff(np.r_[np.flatnonzero(first), len(frame)])))
    if spec["sequences"]["unit"] == "entity":
        ends, window = entity_end_rows(arrays.starts), spec["sequences"]["max_len"]
        expected = enc.transform(events).filter(like="z_").to_numpy()
    else:
        ends, window = np.arange(len(frame)), len(frame)
        data, _ = enc.prepare(events)
        expected = enc.transform(events).filter(like="z_").to_numpy()[data.order]
    got = _run(_session(d), *gather_windows(arrays, ends, window))
    assert np.abs(got - expected).max() <= 1e-4


def test_export_refuses_an_existing_output_and_a_missing_encoder(exported, tmp_path):
    _, _, d = exported
    r = run("encoder", "export", d / "enc", "--out", d / "onnx")
    assert r.exit_code == 1 and r.output.strip() == f"error: output '{d / 'onnx'}' exists already; pass --overwrite to replace it"
    r = run("encoder", "export", tmp_path / "nope", "--out", tmp_path / "x")
    assert r.exit_code == 1 and "does not exist" in r.output and not (tmp_path / "x").exists()
    r = run("encoder", "export", d / "enc", "--format", "tflite", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "Invalid value for '--format'" in r.output
