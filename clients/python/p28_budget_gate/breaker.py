"""The circuit breaker of the Python gate: the same rules, and defaults, as the Node gate's."""

import threading
import time

__all__ = ["Breaker"]


class Breaker:
    """Opens on either of the Node gate's two rules, answers ``breaker_open`` while open, then lets
    one trial call through after ``reset_timeout_sec`` (half-open): a success closes it, a failure
    opens it again.

    - the share of failed calls in a rolling window of ``rolling_window_sec`` reaches
      ``error_threshold_percentage`` once the window holds ``volume_threshold`` calls;
    - a run of ``consecutive_failures_to_open`` failed calls with no success between them, lasting
      at least ``failure_streak_sec`` (under heavy traffic the window holds so many earlier
      successes that a frozen Redis would never reach the percentage).
    """

    def __init__(self, *, error_threshold_percentage=50, volume_threshold=5, rolling_window_sec=10.0,
                 consecutive_failures_to_open=5, failure_streak_sec=0.4, reset_timeout_sec=5.0,
                 clock=time.monotonic, on_change=None):
        self._threshold = error_threshold_percentage
        self._volume = volume_threshold
        self._window = rolling_window_sec
        self._streak_needed = consecutive_failures_to_open
        self._streak_sec = failure_streak_sec
        self._reset = reset_timeout_sec
        self._clock = clock
        self._on_change = on_change or (lambda state: None)
        self._lock = threading.Lock()
        self._calls = []  # (time, ok) within the window
        self._streak = 0
        self._streak_started = 0.0
        self._opened_at = None
        self._trial_out = False
        self.state = "closed"

    def allow(self):
        """Whether a call may go to Redis now (at most one trial while half-open)."""
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open" and self._clock() - self._opened_at >= self._reset:
                self._set("half_open")
            if self.state == "half_open" and not self._trial_out:
                self._trial_out = True
                return True
            return False

    def success(self):
        with self._lock:
            self._streak = 0
            self._record(True)
            if self.state != "closed":
                self._trial_out = False
                self._calls = []
                self._set("closed")

    def failure(self):
        with self._lock:
            now = self._clock()
            if self.state == "half_open":
                self._trial_out = False
                self._open(now)
                return
            if self._streak == 0:
                self._streak_started = now
            self._streak += 1
            self._record(False)
            if self.state != "closed":
                return
            failed = sum(1 for _, ok in self._calls if not ok)
            by_share = len(self._calls) >= self._volume and failed * 100 >= self._threshold * len(self._calls)
            by_streak = self._streak >= self._streak_needed and now - self._streak_started >= self._streak_sec
            if by_share or by_streak:
                self._open(now)

    def _record(self, ok):
        now = self._clock()
        self._calls.append((now, ok))
        cut = now - self._window
        while self._calls and self._calls[0][0] < cut:
            self._calls.pop(0)

    def _open(self, now):
        self._opened_at = now
        self._streak = 0
        self._set("open")

    def _set(self, state):
        if state != self.state:
            self.state = state
            self._on_change(state)
