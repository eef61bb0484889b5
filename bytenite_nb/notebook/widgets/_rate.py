"""Tasks per second and time left, smoothed the way tqdm smooths its rate.

Each time more tasks have finished (completed or failed), :meth:`RateMeter.update` takes a
sample: how many more (``dn``) in how long (``dt``). Both are kept as exponential moving
averages with tqdm's bias correction (``smoothing`` 0.3: recent samples weigh more, one odd
sample does not swing the estimate), and the rate is their ratio. Nothing is estimated until
``min_finished`` tasks have finished since the meter started watching: a rate from one or
two tasks would be invented, not measured.

``js/rate_logic.js`` is the same meter for the live widget (fed by the browser's clock);
``js/tests/rate_cases.json`` holds cases both must answer alike (tests in node and Python).
"""

from __future__ import annotations

__all__ = ["MIN_FINISHED", "SMOOTHING", "RateMeter", "format_eta", "format_rate", "pace_text"]

#: tqdm's default smoothing factor (0: average since the start, 1: the last sample only).
SMOOTHING = 0.3
#: Tasks that must have finished, since the meter started, before it says anything.
MIN_FINISHED = 3


class _Ema:
    """An exponential moving average with tqdm's bias correction (``tqdm.std.EMA``)."""

    def __init__(self, smoothing: float) -> None:
        self.alpha = smoothing
        self.last = 0.0
        self.calls = 0

    def add(self, value: float) -> None:
        self.last = self.alpha * value + (1 - self.alpha) * self.last
        self.calls += 1

    @property
    def value(self) -> float:
        beta = 1 - self.alpha
        return self.last / (1 - beta ** self.calls) if self.calls else self.last


class RateMeter:
    """Smoothed tasks per second and seconds left; see the module docstring.

    Times are seconds on any monotonic clock; ``finished`` counts completed plus failed tasks.
    """

    def __init__(self, smoothing: float = SMOOTHING, min_finished: int = MIN_FINISHED) -> None:
        self.min_finished = min_finished
        self._dn = _Ema(smoothing)
        self._dt = _Ema(smoothing)
        self._first: int | None = None
        self._last_t = 0.0
        self._last_n = 0

    def update(self, t: float, finished: int) -> None:
        """Note that ``finished`` tasks have finished at time ``t``."""
        if self._first is None:
            self._first, self._last_t, self._last_n = finished, t, finished
            return
        dn, dt = finished - self._last_n, t - self._last_t
        if dn <= 0 or dt <= 0:
            return  # nothing finished since the last sample (or the clock did not move)
        self._dn.add(dn)
        self._dt.add(dt)
        self._last_t, self._last_n = t, finished

    @property
    def rate(self) -> float | None:
        """Tasks per second, or ``None`` until enough tasks have finished."""
        if self._first is None or self._last_n - self._first < self.min_finished:
            return None
        dt = self._dt.value
        return self._dn.value / dt if dt > 0 else None

    def eta(self, total: int, t: float | None = None) -> float | None:
        """Seconds until ``total`` tasks have finished: the remaining tasks at the rate, less
        the time since the last sample when ``t`` is given (never below 0); ``None`` while
        the rate is unknown."""
        rate = self.rate
        if rate is None or rate <= 0:
            return None
        left = max(0, total - self._last_n) / rate
        if t is not None:
            left -= max(0.0, t - self._last_t)
        return max(0.0, left)


def _fixed(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, a tie rounded up as JavaScript's ``toFixed`` does
    (Python's format rounds a tie to even: 12.25 would read 12.2 here and 12.3 in the widget)."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def format_rate(rate: float | None) -> str:
    """``12.5 tasks/s``, ``2.0 s/task`` below one a second, ``""`` when unknown."""
    if rate is None or rate <= 0:
        return ""
    if rate >= 1:
        return f"{_fixed(rate, 0 if rate >= 100 else 1)} tasks/s"
    return f"{_fixed(1 / rate, 1)} s/task"


def format_eta(seconds: float | None) -> str:
    """``~42s left`` (``format_elapsed`` units), ``""`` when unknown."""
    from bytenite_nb.notebook.widgets._view import format_elapsed

    if seconds is None or seconds < 0:
        return ""
    return f"~{format_elapsed(seconds)} left"


def pace_text(rate: float | None, eta: float | None) -> str:
    """``12.5 tasks/s · ~42s left`` (either part alone when the other is unknown)."""
    return " · ".join(p for p in (format_rate(rate), format_eta(eta)) if p)
