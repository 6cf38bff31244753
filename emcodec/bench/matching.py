"""Matched bytes: the baseline setting whose total output is the largest that fits the budget.

The budget is the actual .tcs file size. A knob's size curve is nearly but not always
monotone (video rate control), so bisection narrows the range and the answer is the largest
fitting size among everything tried. The issue's rule: total <= budget always, and >= 90%
of it where the knob allows (a coarse knob can jump over the window; that is reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

MIN_FRACTION = 0.90  # of the budget, where the knob allows


@dataclass
class Trial:
    knob: float
    nbytes: int
    payloads: list[bytes] = field(repr=False, default_factory=list)


@dataclass
class Match:
    budget: int
    fits: bool  # some setting is within the budget
    matched: Trial | None
    smallest: Trial  # the fewest bytes the knob can give
    trials: list[Trial]
    knob_at_limit: bool = False  # even the most-bytes setting is under the budget
    next_over: Trial | None = None  # the next knob step towards more bytes, already over the budget

    @property
    def fraction(self) -> float:
        return self.matched.nbytes / self.budget if self.matched else float("nan")

    @property
    def knob_allows_more(self) -> bool:
        """False when no setting gives more bytes within the budget: the knob's end or its step."""
        return not (self.knob_at_limit or self.next_over is not None)

    @property
    def within_tolerance(self) -> bool:
        """<= budget, and >= 90% of it unless the knob cannot give more (its end or its step)."""
        if not self.matched or self.matched.nbytes > self.budget:
            return False
        return self.fraction >= MIN_FRACTION or not self.knob_allows_more


class Sizer:
    """Encodes at a knob value once and remembers the result."""

    def __init__(self, encode: Callable[[float], list[bytes]]):
        self._encode = encode
        self.trials: dict[float, Trial] = {}

    def __call__(self, knob: float) -> Trial:
        if knob not in self.trials:
            payloads = self._encode(knob)
            self.trials[knob] = Trial(knob, sum(len(p) for p in payloads), payloads)
        return self.trials[knob]


def _mid(a: float, b: float, step: float | None, log: bool) -> float:
    m = math.sqrt(a * b) if log and a > 0 and b > 0 else (a + b) / 2
    if step:
        m = snap(m, step)
        if m == a or m == b:  # rounding hit an end: take the grid point next to a, towards b
            m = snap(a + math.copysign(step, b - a), step)
    return m


def snap(knob: float, step: float | None) -> float:
    """A knob value on the codec's grid (`step` None: any value)."""
    return float(round(knob / step) * step) if step else float(knob)


def match_budget(sizer: Sizer, budget: int, knob_range, *, step: float | None, more_bytes_when_larger: bool,
                 log: bool = False, max_steps: int = 18) -> Match:
    """Bisection on the knob for the largest total <= budget.

    step: the knob's granularity (1 for an integer knob, None for a continuous one). Ties in
    size go to the setting nearer the high-quality end.
    """
    fewest, most = (knob_range if more_bytes_when_larger else knob_range[::-1])
    fewest, most = float(fewest), float(most)
    small = sizer(fewest)
    if small.nbytes > budget:
        return Match(budget, False, None, small, sorted(sizer.trials.values(), key=lambda t: t.nbytes))
    big = sizer(most)
    at_limit = big.nbytes <= budget
    if not at_limit:
        a, b = fewest, most  # a fits, b does not
        for _ in range(max_steps):
            if step and abs(b - a) <= step * 1.0001:
                break
            m = _mid(a, b, step, log)
            t = sizer(m)
            if t.nbytes <= budget:
                a = m
                if not step and t.nbytes >= 0.98 * budget:  # a continuous knob: close enough
                    break
            else:
                b = m
    fitting = [t for t in sizer.trials.values() if t.nbytes <= budget]
    sign = 1.0 if more_bytes_when_larger else -1.0
    best = max(fitting, key=lambda t: (t.nbytes, sign * t.knob))  # ties: the higher-quality setting
    next_over = None
    if step and not at_limit:
        nxt = sizer(snap(best.knob + sign * step, step))
        next_over = nxt if nxt.nbytes > budget else None
    return Match(budget, True, best, small, sorted(sizer.trials.values(), key=lambda t: t.nbytes), at_limit,
                 next_over)


def scan_grid(match: Match, knob_range, *, step: float | None, more_bytes_when_larger: bool, points: int = 8,
              log: bool = False) -> list[float]:
    """Knob values from the fewest-bytes end up to the matched setting, for the best-PSNR scan.

    Every tried setting within the budget is included too: it is already encoded.
    """
    if not match.fits:
        return []
    fewest = float(knob_range[0] if more_bytes_when_larger else knob_range[1])
    end = match.matched.knob
    if log and fewest > 0 and end > 0:
        grid = [math.exp(math.log(fewest) + (math.log(end) - math.log(fewest)) * i / (points - 1)) for i in range(points)]
    else:
        grid = [fewest + (end - fewest) * i / (points - 1) for i in range(points)]
    grid = [snap(g, step) for g in grid]
    grid += [t.knob for t in match.trials if t.nbytes <= match.budget]
    return sorted(set(grid))
