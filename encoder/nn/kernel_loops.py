"""The random kernels' PPV features as one compiled loop (numba), without a dense comparison tensor.

MiniRocket's arithmetic (Dempster et al., KDD 2021): a kernel's weights are -1 at every tap and +2
at three, so its convolution at step t is ``3 * (y[a] + y[b] + y[c]) - (sum of the nine taps)`` of
the series y it reads (its channels summed first: the weights are the same on every channel). The
nine-tap sums of every channel are computed once per dilation and shared by all 84 kernels; each
kernel then adds its channels' sums and its three taps, and counts, per bias, the steps whose sum
exceeds it. Nothing of size (steps x kernels x biases) is ever stored.

``kernels.RandomKernelFeatures`` calls this for every forward pass except ONNX tracing, which keeps
the convolution in torch; ``tests/test_kernels.py`` holds both to a direct computation.
"""
from __future__ import annotations

import numpy as np


def _compile():
    import numba

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def ppv(x, lengths, dilations, counts, taps, members, n_members, biases, out):  # pragma: no cover - compiled
        """x (B, T, C) float, lengths (B,), dilations/counts (D,), taps (84, 3) positions of the +2
        weights, members (D, 84, C) each kernel's channel indices (the first n_members[i, k]),
        biases (features,); writes out (B, features): dilation, then kernel, then bias."""
        B, T, C = x.shape
        width = T + 8 * dilations.max()  # a sequence with 4 d zeros either side: taps need no bounds checks
        xp = np.zeros((C, width), np.float32)  # each channel, padded
        window = np.zeros((C, T), np.float32)  # each channel's nine-tap sums at one dilation
        yp = np.zeros(width, np.float32)  # one kernel's channels summed, padded
        s = np.zeros(T, np.float32)  # one kernel's nine-tap sums over its channels
        v = np.zeros(T, np.float32)  # one kernel's convolution
        for b in range(B):
            L = lengths[b]
            f = 0
            for i in range(len(dilations)):
                d, count = dilations[i], counts[i]
                pad, n = 4 * d, L + 8 * d
                for c in range(C):
                    row, w = xp[c], window[c]
                    row[:n] = 0.0
                    for t in range(L):
                        row[pad + t] = x[b, t, c]
                    w[:L] = 0.0
                    for j in range(9):
                        shifted = row[j * d:j * d + L]
                        for t in range(L):
                            w[t] += shifted[t]
                inner = L - 2 * pad > 0  # some step's receptive field lies inside the sequence
                last = -1  # the kernel whose channel sums yp and s hold
                for k in range(84):
                    m = n_members[i, k]
                    same = last >= 0 and m == n_members[i, last]
                    if same:
                        for q in range(m):
                            if members[i, k, q] != members[i, last, q]:
                                same = False
                                break
                    if not same:
                        yp[:n] = 0.0
                        s[:L] = 0.0
                        for q in range(m):
                            row, w = xp[members[i, k, q]], window[members[i, k, q]]
                            for t in range(n):
                                yp[t] += row[t]
                            for t in range(L):
                                s[t] += w[t]
                        last = k
                    lo, hi = (pad, L - pad) if (k + i) % 2 == 1 and inner else (0, L)
                    a, e, g = taps[k, 0] * d, taps[k, 1] * d, taps[k, 2] * d
                    ya, ye, yg, vv, ss = yp[a:a + L], yp[e:e + L], yp[g:g + L], v[:L], s[:L]
                    for t in range(L):
                        vv[t] = np.float32(3.0) * (ya[t] + ye[t] + yg[t]) - ss[t]
                    counted = v[lo:hi]
                    for j in range(count):
                        bias = biases[f + k * count + j]
                        above = 0
                        for t in range(hi - lo):
                            above += counted[t] > bias
                        out[b, f + k * count + j] = above / (hi - lo)
                f += 84 * count

    return ppv


_PPV = None


def ppv_features(x: np.ndarray, lengths: np.ndarray, dilations, counts, taps: np.ndarray, channels: np.ndarray,
                 biases: np.ndarray, threads: int = 1, out: np.ndarray | None = None) -> np.ndarray:
    """PPV features (B, len(biases)) of x (B, T, C) over each row's ``lengths`` valid steps, written
    into ``out`` (float32 or float64, any strides: a transposed block of a larger matrix will do;
    None: a new float64 array) and returned.

    ``channels`` (D, 84, C) is 1 where kernel k of dilation i reads a channel. Rows are split over
    ``threads`` threads (the loop releases the GIL)."""
    global _PPV
    if _PPV is None:
        _PPV = _compile()
    n_members = (channels > 0).sum(-1).astype(np.int64)  # (D, 84)
    members = np.argsort(channels <= 0, axis=-1, kind="stable").astype(np.int64)  # (D, 84, C): members first
    args = (np.asarray(dilations, np.int64), np.asarray(counts, np.int64), taps.astype(np.int64), members,
            n_members, biases.astype(np.float32))
    B = len(x)
    out = np.empty((B, len(biases)), np.float64) if out is None else out  # every feature is written
    x = np.ascontiguousarray(x, np.float32)
    lengths = np.asarray(lengths, np.int64)
    if threads <= 1 or B < 2 * threads:
        _PPV(x, lengths, *args, out)
        return out
    from concurrent.futures import ThreadPoolExecutor
    bounds = np.linspace(0, B, threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda lo_hi: _PPV(x[lo_hi[0]:lo_hi[1]], lengths[lo_hi[0]:lo_hi[1]], *args,
                                          out[lo_hi[0]:lo_hi[1]]), zip(bounds[:-1], bounds[1:])))
    return out
