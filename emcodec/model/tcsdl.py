"""TCS-DL: a first-frame CNN, a forward RNN and a backward RNN (paper Methods, Figure 1).

All convolutions run at half resolution on space-to-depth (pixel-unshuffle x2) features: the
same receptive field for a quarter of the cost, which is what makes CPU training possible.
The network is fully convolutional; only the first layer depends on B (adapt_state_dict maps
it between group sizes). Self-attention runs over a 4x average-pooled map inside fixed windows
of 8x8 pooled cells, so its memory is linear in the tile area (a 64x64 matrix per window).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "tcsdl-v1"


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


def _cnn(cin: int, width: int, cout: int, layers: int) -> nn.Sequential:
    """`layers` 3x3 convolutions with activations between them (none after the last)."""
    mods: list[nn.Module] = []
    c = cin
    for i in range(layers):
        last = i == layers - 1
        mods.append(_conv(c, cout if last else width))
        if not last:
            mods.append(_act())
        c = width
    return nn.Sequential(*mods)


class ResBlock(nn.Module):
    """`layers` convolutions with an identity skip (He et al.)."""

    def __init__(self, width: int, layers: int = 2):
        super().__init__()
        self.body = _cnn(width, width, width, layers)

    def forward(self, x):
        return x + self.body(x)


class PooledWindowAttention(nn.Module):
    """Self-attention among 4x-pooled cells within windows of `window` x `window` cells.

    Bounded memory: each window holds a (window^2 x window^2) matrix whatever the tile size;
    the result is upsampled and added back, so fine detail passes through the skip.
    """

    def __init__(self, width: int, pool: int = 4, window: int = 8):
        super().__init__()
        self.pool, self.window = pool, window
        self.qkv = nn.Conv2d(width, 3 * width, 1)
        self.proj = nn.Conv2d(width, width, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.last_matrix_shape: tuple[int, ...] = ()

    def forward(self, x):
        n, c, h, w = x.shape
        p = F.avg_pool2d(x, self.pool, ceil_mode=True)
        ph, pw = p.shape[-2:]
        win = self.window
        wh, ww = min(win, ph), min(win, pw)
        ty, tx = -ph % wh, -pw % ww
        if ty or tx:
            p = F.pad(p, (0, tx, 0, ty), mode="replicate")
        H, W = p.shape[-2:]
        q, k, v = self.qkv(p).chunk(3, dim=1)

        def windows(t):  # (n, c, H, W) -> (n * nwin, wh*ww, c)
            t = t.reshape(n, c, H // wh, wh, W // ww, ww).permute(0, 2, 4, 3, 5, 1)
            return t.reshape(-1, wh * ww, c)

        q, k, v = windows(q), windows(k), windows(v)
        att = torch.softmax(q @ k.transpose(1, 2) * c**-0.5, dim=-1)
        self.last_matrix_shape = tuple(att.shape)
        o = (att @ v).reshape(n, H // wh, W // ww, wh, ww, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, H, W)
        o = self.proj(o[..., :ph, :pw])
        return x + F.interpolate(o, size=(h, w), mode="bilinear", align_corners=False)


class FirstFrameCNN(nn.Module):
    """[Ybar, Ybar*C_1..Ybar*C_B] -> first frame: 4-layer CNN, 3-layer residual block,
    self-attention, 4-layer CNN (paper: two four-layer CNNs, a residual block, attention)."""

    def __init__(self, B: int, width: int):
        super().__init__()
        self.cnn1 = nn.Sequential(_cnn(4 * (B + 1), width, width, 4), _act())
        self.res = ResBlock(width, 3)
        self.att = PooledWindowAttention(width)
        self.cnn2 = _cnn(width, width, 4, 4)

    def forward(self, z):  # z: unshuffled (N, 4(B+1), h/2, w/2)
        return self.cnn2(self.att(self.res(self.cnn1(z))))


class Cell(nn.Module):
    """One RNN cell: three sub-CNNs (previous frame, measurement part, hidden state),
    concatenation, two residual blocks -> new hidden state, and an output sub-CNN."""

    def __init__(self, width: int):
        super().__init__()
        self.f_prev = nn.Sequential(_cnn(4, width, width, 2), _act())
        self.f_meas = nn.Sequential(_cnn(12, width, width, 2), _act())
        self.f_hid = nn.Sequential(_conv(width, width), _act())
        self.fuse = nn.Sequential(_conv(3 * width, width), _act())
        self.res = nn.Sequential(ResBlock(width), ResBlock(width))
        self.out = _cnn(width, width, 4, 2)

    def forward(self, prev, meas, hidden):
        z = torch.cat([self.f_prev(prev), self.f_meas(meas), self.f_hid(hidden)], 1)
        h = self.res(self.fuse(z))
        return h, self.out(h)


class TCSDL(nn.Module):
    """The TCS-DL decoder for groups of B frames.

    forward(y, masks): y (N, h, w) normalised measurement sum_k masks_k * x_k, masks (N, B, h, w)
    of 0/1 -> (forward frames, backward frames), each (N, B, h, w). The backward frames, after
    an optional learned re-projection onto the measurement, are the reconstruction.
    """

    def __init__(self, B: int, width: int = 32, reproject: bool = True):
        super().__init__()
        if B < 2:
            raise ValueError(f"TCS-DL needs B >= 2, got {B}")
        self.B, self.width, self.reproject = B, width, reproject
        self.first = FirstFrameCNN(B, width)
        self.fwd = Cell(width)
        self.bwd = Cell(width)
        # learned step size of the final re-projection (sigmoid(-1) = 0.27 at the start)
        self.alpha = nn.Parameter(torch.tensor(-1.0))

    def hyperparameters(self) -> dict:
        return {"B": self.B, "width": self.width, "reproject": self.reproject}

    def forward(self, y: torch.Tensor, masks: torch.Tensor):
        n, B, h, w = masks.shape
        if B != self.B:
            raise ValueError(f"model is for B={self.B}, masks have B={B}")
        ph, pw = h % 2, w % 2
        if ph or pw:  # pixel-unshuffle needs even sizes
            y = F.pad(y[:, None], (0, pw, 0, ph), mode="replicate")[:, 0]
            masks = F.pad(masks, (0, pw, 0, ph), mode="replicate")
        fwd, bwd = self._run(y, masks)
        return fwd[..., :h, :w], bwd[..., :h, :w]

    def _run(self, y, C):
        n, B, h, w = C.shape
        y = y[:, None]  # (N, 1, h, w)
        S = C.sum(1, keepdim=True)
        Sc = S.clamp(min=1.0)
        ybar = y / Sc  # Eq. 2 (pixels no frame sampled get 0)
        down = lambda t: F.pixel_unshuffle(t, 2)  # noqa: E731
        up = lambda t: F.pixel_shuffle(t, 2)  # noqa: E731
        x = ybar + up(self.first(down(torch.cat([ybar, ybar * C], 1))))
        hidden = torch.zeros(n, self.width, h // 2, w // 2, dtype=y.dtype, device=y.device)
        fwd = []
        done = torch.zeros_like(y)  # sum_{t<k} C_t x_t
        seen = torch.zeros_like(y)  # sum_{t<=k} C_t
        for k in range(B):
            ck = C[:, k : k + 1]
            seen = seen + ck
            if k > 0:
                # Eq. 3: Y minus the frames already rebuilt and Ybar for those still to come
                resid = y - done - (S - seen) * ybar
                hidden, out = self.fwd(down(x), down(torch.cat([ybar, resid, ck], 1)), hidden)
                x = ybar + up(out)
            fwd.append(x)
            done = done + ck * x
        fwd_t = torch.cat(fwd, 1)
        # backward RNN from the forward's last hidden state; Eq. 4 uses the forward frames
        before = done  # sum_{t<B} C_t x^f_t, peeled off as k decreases
        after = torch.zeros_like(y)  # sum_{t>k} C_t x^b_t
        bwd = [None] * B
        x = fwd[-1]
        for k in range(B - 1, -1, -1):
            ck = C[:, k : k + 1]
            xf = fwd[k]
            before = before - ck * xf
            resid = y - before - after
            hidden, out = self.bwd(down(x), down(torch.cat([xf, resid, ck], 1)), hidden)
            x = xf + up(out)
            bwd[k] = x
            after = after + ck * x
        bwd_t = torch.cat(bwd, 1)
        if self.reproject:  # one damped GAP step towards sum_k C_k x_k = y
            r = (y - (C * bwd_t).sum(1, keepdim=True)) / Sc
            bwd_t = bwd_t + torch.sigmoid(self.alpha) * C * r
        return fwd_t, bwd_t


def adapt_state_dict(state: dict, B_new: int) -> dict:
    """Weights of a model for one B made usable for another B.

    Only the first layer sees B (inputs Ybar, Ybar*C_1..Ybar*C_B, each as 4 sub-pixel
    channels). The Ybar and frame-1 weights are kept; the other frames' weights are
    interpolated along k and scaled by (B_old-1)/(B_new-1) so that their sum is unchanged.
    """
    key = "first.cnn1.0.0.weight"
    w = state[key]
    B_old = w.shape[1] // 4 - 1
    if B_old == B_new:
        return dict(state)
    wk = w.reshape(w.shape[0], B_old + 1, 4, *w.shape[2:])
    base, frames = wk[:, :1], wk[:, 1:]
    pos = torch.linspace(0, B_old - 1, B_new)
    lo = pos.floor().long().clamp(max=B_old - 1)
    hi = (lo + 1).clamp(max=B_old - 1)
    f = (pos - lo.float()).view(1, -1, 1, 1, 1)
    new = frames[:, lo] * (1 - f) + frames[:, hi] * f
    if B_new > 1 and B_old > 1:
        new[:, 1:] *= (B_old - 1) / (B_new - 1)
    new[:, 0] = frames[:, 0]
    out = dict(state)
    out[key] = torch.cat([base, new], 1).reshape(w.shape[0], 4 * (B_new + 1), *w.shape[2:]).contiguous()
    return out
