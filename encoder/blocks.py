"""The code as named blocks: what each stretch of ``z_*`` columns is, and whether training made it.

An encoder's code is the concatenation, in this order, of

- ``pooled``: the LSTM's step codes pooled over the sequence (trained);
- ``conv``: the dilated convolution branch's step codes, pooled (trained; 0 wide by default);
- ``segments``: each pooled channel's maximum over equal parts of the sequence (read off trained
  step codes, so trained);
- ``surprise``: how far each event departs from what the next-event head expected (trained);
- ``summary``: plain statistics of each numeric channel (not trained);
- ``kernels``: MiniRocket's random-kernel features (not trained: channels and biases are fitted
  without gradients).

Every consumer (the estimator's manifest, encode-time block selection, ``pipeline compare``, the
benchmarks, the ONNX export) reads the layout from ``code_blocks``, so an ablation is a list of
block names, never column arithmetic.
"""
from __future__ import annotations

import dataclasses

from encoder.io.errors import InputError
from encoder.nn.statistics import SUMMARY_STATS

BLOCKS = ("pooled", "conv", "segments", "surprise", "summary", "kernels")  # order in the code
TRAINED = frozenset({"pooled", "conv", "segments", "surprise"})  # made by gradient descent


@dataclasses.dataclass(frozen=True)
class CodeBlock:
    """One named block of the code: its ``z_*`` columns, a readable name for each, and whether
    training made it (``trained``) or it is fitted without gradients and would be the same in an
    untrained twin."""

    name: str
    columns: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def trained(self) -> bool:
        return self.name in TRAINED

    @property
    def width(self) -> int:
        return len(self.columns)


def code_blocks(mc, numeric_channels, categorical, kernel_names) -> list[CodeBlock]:
    """Every block of a code of model config ``mc`` (``nn.config.ModelConfig``), in code order, empty
    ones included: the LSTM's pooled channels ``z_0..``, the convolution branch's, then segment
    maxima (``segment 1/4:z_0``), surprise (``surprise:amount``, and with a ``surprise_halflife``
    ``surprise_mean:`` and ``surprise_var:``), summary statistics (``mean:x0``) and random-kernel
    features (``ppv:d1/k0/b0``: dilation, kernel, bias)."""
    K, S = mc.pooled_dim, mc.segments
    channels = [*numeric_channels, *categorical] if mc.surprise else []
    kinds = ("surprise", "surprise_mean", "surprise_var") if mc.surprise_halflife > 0 else ("surprise",)
    numeric = numeric_channels if mc.summary_stats else []
    labels = {
        "pooled": [f"z_{k}" for k in range(mc.latent_dim)],
        "conv": [f"conv:z_{k}" for k in range(mc.latent_dim, K)],
        "segments": [f"segment {j + 1}/{S}:z_{k}" for j in range(S) for k in range(K)],
        "surprise": [f"{kind}:{c}" for kind in kinds for c in channels],
        "summary": [f"{stat}:{c}" for stat in SUMMARY_STATS for c in numeric],
        "kernels": list(kernel_names),
    }
    blocks, start = [], 0
    for name in BLOCKS:
        n = len(labels[name])
        blocks.append(CodeBlock(name, tuple(f"z_{start + i}" for i in range(n)), tuple(labels[name])))
        start += n
    if start != mc.code_dim:  # the layout and the network must agree channel for channel
        raise AssertionError(f"code blocks cover {start} channels, the network writes {mc.code_dim}")
    return blocks


def parse_blocks(spec, blocks: list[CodeBlock], source: str = "--blocks") -> list[str]:
    """Block names from ``spec`` (comma-separated text or a sequence; None: every block), checked
    against ``blocks``. ``learned`` and ``untrained`` stand for every trained or untrained block,
    and a leading ``-`` drops a block from everything (``-kernels``)."""
    present = [b.name for b in blocks if b.width]
    if spec is None:
        return present
    words = [w.strip() for w in (spec.split(",") if isinstance(spec, str) else spec) if w.strip()]
    if not words:
        raise InputError(f"{source} names no block; choose from {', '.join(present)}")
    groups = {"learned": [n for n in present if n in TRAINED], "untrained": [n for n in present if n not in TRAINED],
              "all": present}
    dropping = all(w.startswith("-") for w in words)
    if not dropping and any(w.startswith("-") for w in words):
        raise InputError(f"{source} '{','.join(words)}' mixes kept and dropped blocks; name either one or the other")
    chosen = set(present) if dropping else set()
    for word in words:
        name = word.lstrip("-")
        if name not in groups and name not in BLOCKS:
            raise InputError(f"{source} names block '{name}'; choose from {', '.join([*present, *groups])}")
        names = groups.get(name, [name])
        if name in BLOCKS and name not in present:
            raise InputError(f"{source} names block '{name}', which this encoder's code does not have "
                             f"(it has {', '.join(present)})")
        chosen = chosen - set(names) if dropping else chosen | set(names)
    if not chosen:
        raise InputError(f"{source} '{','.join(words)}' leaves no block")
    return [n for n in present if n in chosen]


def block_columns(blocks: list[CodeBlock], names) -> list[str]:
    """The ``z_*`` columns of the blocks ``names``, in code order."""
    wanted = set(names)
    return [c for b in blocks if b.name in wanted for c in b.columns]
