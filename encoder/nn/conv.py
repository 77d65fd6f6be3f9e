"""TS2Vec's dilated convolution branch beside the LSTM, on masked inputs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from encoder.sequences import valid_mask


class DilatedConvBlock(nn.Module):
    """A residual pair of "same"-padded convolutions of kernel 3 and one dilation (TS2Vec's
    ``ConvBlock``), on masked inputs: padded steps are zeroed after each convolution, so a valid
    step reads zeros past a sequence's end exactly as it would with no padding at all."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)

    def forward(self, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """h (B, C, P) zero on padding, valid (B, 1, P) -> (B, C, P) zero on padding."""
        out = self.conv1(F.gelu(h)) * valid  # (B, C, P)
        return self.conv2(F.gelu(out)) * valid + h  # (B, C, P)


class DilatedConvBranch(nn.Module):
    """Step codes from dilated convolutions beside the LSTM (TS2Vec's encoder): a linear map of each
    step's inputs, ``depth`` residual blocks whose dilation doubles (1, 2, 4, ...; each step then
    sees 1 + 4 (2^depth - 1) steps around it), and a linear map to ``out`` channels per step."""

    def __init__(self, input_size: int, channels: int, out: int, depth: int):
        super().__init__()
        self.input = nn.Linear(input_size, channels)
        self.blocks = nn.ModuleList(DilatedConvBlock(channels, 2 ** i) for i in range(depth))
        self.output = nn.Linear(channels, out)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, P, C_in) steps, ``lengths`` (B,) valid steps -> step codes (B, P, out), 0 on padding."""
        valid = valid_mask(lengths.to(x.device), x.shape[1])[:, None, :].to(x.dtype)  # (B, 1, P)
        h = self.input(x).transpose(1, 2) * valid  # (B, C, P)
        for block in self.blocks:
            h = block(h, valid)  # (B, C, P)
        return self.output(h.transpose(1, 2)) * valid.transpose(1, 2)  # (B, P, out)
