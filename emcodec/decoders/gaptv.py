"""GAP-TV: generalized alternating projection with total-variation denoising (Yuan 2016).

The classical, training-free decoder. Each iteration projects the estimate onto the set of
movies that reproduce the measurement (cheap, because Phi Phi^T = diag(S) for binary masks),
then denoises it with a few steps of Chambolle's (2004) dual projection for TV. Everything is
vectorised over the batch of tiles and the B frames. Defaults were chosen once on simulated
movies (benchmarks/tune_gaptv.py, docs/decoders.md); they are not meant to be tuned per movie.
"""

from __future__ import annotations

import torch

from .base import Decoder


class GapTV(Decoder):
    """GAP-TV with optional acceleration, a decaying TV weight and a small temporal TV term.

    iterations:      GAP iterations (projection + TV denoising).
    tv_weight:       final TV weight (lambda of Chambolle's problem), in normalised units.
    weight_start:    the weight decays geometrically from weight_start * tv_weight to
                     tv_weight: strong smoothing first, detail later.
    temporal_weight: weight of the frame-to-frame difference inside the TV norm (0 = 2-D TV).
    tv_iterations:   Chambolle steps per GAP iteration; the dual variable is warm-started
                     across GAP iterations, so few steps suffice.
    accelerate:      add back the accumulated residual (accelerated GAP). Off by default:
                     at EM doses it adds the noise back too (-1.6 dB in the sweep).
    """

    name = "gap-tv"

    def __init__(
        self,
        iterations: int = 20,
        tv_weight: float = 0.05,
        weight_start: float = 4.0,
        temporal_weight: float = 0.5,
        tv_iterations: int = 5,
        accelerate: bool = False,
    ):
        if iterations < 1 or tv_iterations < 1 or tv_weight <= 0 or weight_start <= 0 or temporal_weight < 0:
            raise ValueError("GAP-TV needs iterations, tv_iterations >= 1, tv_weight, weight_start > 0, temporal_weight >= 0")
        self.iterations = int(iterations)
        self.tv_weight = float(tv_weight)
        self.weight_start = float(weight_start)
        self.temporal_weight = float(temporal_weight)
        self.tv_iterations = int(tv_iterations)
        self.accelerate = bool(accelerate)

    @property
    def labels(self) -> list[str]:
        """The parameters, recorded in the decoded movie so a result can be reproduced."""
        return [
            f"iterations={self.iterations} tv_weight={self.tv_weight} weight_start={self.weight_start} "
            f"temporal_weight={self.temporal_weight} tv_iterations={self.tv_iterations} accelerate={self.accelerate}"
        ]

    def weights(self) -> list[float]:
        """TV weight of each iteration: geometric from weight_start * tv_weight to tv_weight."""
        n = self.iterations
        return [self.tv_weight * self.weight_start ** (1 - i / max(n - 1, 1)) for i in range(n)]

    def decode_tile(self, y: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        s = masks.sum(1).clamp_(min=1.0)
        x = (y / s).unsqueeze(1).expand_as(masks).clone()  # start from Ybar in every frame
        target = y.clone() if self.accelerate else None
        dual = None
        for lam in self.weights():
            residual = y - (masks * x).sum(1)
            if self.accelerate:
                target += residual
                residual = residual + target - y
            x += masks * (residual / s).unsqueeze(1)
            x, dual = tv_denoise(x, lam, self.temporal_weight, self.tv_iterations, dual)
        return x


def _grad(u: torch.Tensor, wt: float, out: list[torch.Tensor]) -> list[torch.Tensor]:
    """Forward differences along x, y (and t, scaled by wt) into `out`; zero at the far border."""
    torch.sub(u[..., :, 1:], u[..., :, :-1], out=out[0][..., :, :-1])
    torch.sub(u[..., 1:, :], u[..., :-1, :], out=out[1][..., :-1, :])
    if len(out) == 3:
        torch.sub(u[:, 1:], u[:, :-1], out=out[2][:, :-1]).mul_(wt)
    return out


def _div(p: list[torch.Tensor], wt: float) -> torch.Tensor:
    """Minus the adjoint of `_grad` (the far-border components of p stay zero)."""
    d = p[0] + p[1]
    d[..., :, 1:] -= p[0][..., :, :-1]
    d[..., 1:, :] -= p[1][..., :-1, :]
    if len(p) == 3:
        d.add_(p[2], alpha=wt)
        d[:, 1:].sub_(p[2][:, :-1], alpha=wt)
    return d


def tv_denoise(f: torch.Tensor, lam: float, wt: float, n_iter: int, p=None):
    """Approximately argmin_u |u - f|^2 / (2 lam) + TV(u) by Chambolle's projection.

    f is (N, B, h, w); TV is isotropic over x, y and wt * t. Returns (u, p) so the caller
    can warm-start the dual variable p.
    """
    ndim = 2 if (wt == 0 or f.shape[1] < 2) else 3
    tau = 0.25 * 2 / (2 + (wt**2 if ndim == 3 else 0))  # 1/4 is Chambolle's practical 2-D step
    if p is None or len(p) != ndim:
        p = [torch.zeros_like(f) for _ in range(ndim)]
    g = [torch.zeros_like(f) for _ in range(ndim)]  # far-border entries are never written
    for _ in range(n_iter):
        _grad(_div(p, wt).sub_(f, alpha=1 / lam), wt, g)
        norm = torch.mul(g[0], g[0])
        for gi in g[1:]:
            norm.addcmul_(gi, gi)
        norm.sqrt_().mul_(tau).add_(1.0)
        for pi, gi in zip(p, g):
            pi.add_(gi, alpha=tau).div_(norm)
    return f - lam * _div(p, wt), p
