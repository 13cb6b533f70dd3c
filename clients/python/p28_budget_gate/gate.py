"""The P2.8 budget gate, in-process for a Python Governor."""

import logging
import math
import pkgutil
import re
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .breaker import Breaker
from .counters import GateCounters
from .decision import FAIL_OPEN_REASONS, PLAN_ID_MAX, Decision, Verdict, is_closing, normalize_symbol, read_request

__all__ = ["BudgetGate", "DEFAULTS"]

LOG = logging.getLogger("p28_budget_gate")

# The same defaults as the Node gate (plugin/gate-options.ts), in seconds.
DEFAULTS = {
    "key_prefix": "quantum",
    "timeout_sec": 0.05,
    "reservation_ttl_sec": 30.0,
    "stale_after_sec": 60.0,
    "violation_window_sec": 30.0,
    "max_clock_skew_sec": 5.0,
    "error_threshold_percentage": 50,
    "volume_threshold": 5,
    "consecutive_failures_to_open": 5,
    "failure_streak_sec": 0.4,
    "reset_timeout_sec": 5.0,
    # How often, at most, a decision without a budget hash checks that a worker writes under the
    # key prefix at all (one EXISTS of its heartbeat key).
    "prefix_check_every_sec": 60.0,
}

PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
REDIS_CAUSES = frozenset(["redis_unavailable", "timeout", "breaker_open"])
# Connection arguments that belong to the pool they came from, not to a copy of it.
_POOL_BOUND = ("maint_notifications_pool_handler",)


def _script(name):
    return pkgutil.get_data(__package__, "lua/" + name).decode("utf-8")


DECIDE_SCRIPT = _script("decide-plan-1.lua")
RELEASE_SCRIPT = _script("release-reservation-1.lua")


def _text(value):
    if value is None or value is False:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _number(value):
    text = _text(value)
    return None if text is None or text == "" else float(text)


def _arg(value):
    """A number as the script reads it: repr() gives the shortest text of the same double."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def decision_from_reply(reply):
    """The Decision of the decision script's reply (see ``lua/decide-plan-1.lua``)."""
    reason = _text(reply[0])
    mode = _text(reply[2]) or None
    fail_open = reason in FAIL_OPEN_REASONS
    blocked = reason == "p28_budget_violation"
    return Decision(
        not blocked,
        reason,
        enforced=blocked or (not fail_open and mode == "enforce"),
        fail_open=fail_open,
        would_block=blocked or reason == "shadow_would_block",
        mode=mode,
        detail=_text(reply[1]) or None,
        budget_usd=_number(reply[3]),
        position_notional_usd=_number(reply[4]),
        projected_notional_usd=_number(reply[5]),
        reserved_usd=_number(reply[6]),
        source="redis",
    )


def _positive(value):
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number > 0 else None


class BudgetGate:
    """The P2.8 budget gate of a Python Governor's permit path, in-process.

    ``redis_client_or_url`` is the Governor's own redis-py client (``decode_responses`` True or
    False) or a redis:// URL. Every decision is one call of the same Redis script the Node gate
    and the worker's HTTP API call (``lua/decide-plan-1.lua``): it judges the plan against the
    symbol's budget hash and, for an allowed plan that adds to the position, reserves the increase
    in the same atomic step. So the three ways in give the same decision for the same hash,
    request and time, and see each other's reservations.

    Each call waits at most ``timeout_sec`` plus a small margin, whatever the client passed in was
    configured with: the gate talks through its own connection pool, a copy of the client's with
    ``timeout_sec`` as socket and connect timeout and no retries (a Cluster or Sentinel client is
    used as it is; its own timeouts then bound a call). A circuit breaker with the Node gate's
    rules stops asking a Redis that keeps failing. Nothing ever raises into the Governor, and no
    Redis failure can turn into a block: every way of not knowing is a fail-open allow with its
    reason, logged once per change of cause (logger ``p28_budget_gate``) and counted.
    """

    name = "p28_budget"

    def __init__(self, redis_client_or_url, *, key_prefix=DEFAULTS["key_prefix"], timeout_sec=DEFAULTS["timeout_sec"],
                 reservation_ttl_sec=DEFAULTS["reservation_ttl_sec"], stale_after_sec=DEFAULTS["stale_after_sec"],
                 violation_window_sec=DEFAULTS["violation_window_sec"], max_clock_skew_sec=DEFAULTS["max_clock_skew_sec"],
                 error_threshold_percentage=DEFAULTS["error_threshold_percentage"], volume_threshold=DEFAULTS["volume_threshold"],
                 consecutive_failures_to_open=DEFAULTS["consecutive_failures_to_open"], failure_streak_sec=DEFAULTS["failure_streak_sec"],
                 reset_timeout_sec=DEFAULTS["reset_timeout_sec"], prefix_check_every_sec=DEFAULTS["prefix_check_every_sec"],
                 force_shadow=False, disabled=False, registry=None, logger=None, now=time.time):
        issues = []
        if not isinstance(key_prefix, str) or not PREFIX_PATTERN.match(key_prefix):
            issues.append("key_prefix: letters, digits, '_', '.' or '-', 1-64 characters")
        for label, value, low, high in (
            ("timeout_sec", timeout_sec, 0.001, 60), ("reservation_ttl_sec", reservation_ttl_sec, 0, 3600),
            ("stale_after_sec", stale_after_sec, 0, 86400), ("violation_window_sec", violation_window_sec, 0, 86400),
            ("max_clock_skew_sec", max_clock_skew_sec, 0, 86400), ("reset_timeout_sec", reset_timeout_sec, 0.001, 3600),
            ("failure_streak_sec", failure_streak_sec, 0, 3600),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                issues.append("%s: a number in [%s, %s]" % (label, low, high))
        if issues:
            raise ValueError("invalid budget gate options: " + "; ".join(issues))
        self.key_prefix = key_prefix
        self.timeout_sec = float(timeout_sec)
        self.disabled = bool(disabled)
        self.force_shadow = bool(force_shadow)
        self._reservation_ttl_ms = int(round(reservation_ttl_sec * 1000))
        self._policy = [str(int(round(stale_after_sec * 1000))), str(int(round(violation_window_sec * 1000))), str(int(round(max_clock_skew_sec * 1000)))]
        self._now = now
        self._log = logger or LOG
        self.counters = GateCounters(registry)
        self.breaker = Breaker(
            error_threshold_percentage=error_threshold_percentage, volume_threshold=volume_threshold,
            consecutive_failures_to_open=consecutive_failures_to_open, failure_streak_sec=failure_streak_sec,
            reset_timeout_sec=reset_timeout_sec, on_change=self._breaker_changed,
        )
        self._client, self._owns_pool = self._bounded_client(redis_client_or_url)
        self._decide = self._client.register_script(DECIDE_SCRIPT)
        self._release = self._client.register_script(RELEASE_SCRIPT)
        self._last_fail_open = None
        self._prefix_check_every = prefix_check_every_sec
        self._prefix_checked_at = None
        self._prefix_missing = False
        self._closed = False

    # --- public API ---

    def evaluate(self, request):
        """The Decision for one PermitRequest dict (``planId``, ``symbol``, ``action``, optional
        ``side``, ``qty``, ``notionalUsd``, ``reduceOnly``). Never raises."""
        try:
            decision = self._judge(request)
        except Exception as error:  # noqa: BLE001 - a permit check must never raise into the Governor
            decision = Decision.fail_open_for("redis_unavailable", "unexpected: %s" % (error,))
        self._finish(request, decision)
        return decision

    def check_portfolio_budget(self, symbol, plan_id, action="OPEN", side=None, qty=None, notional_usd=None, reduce_only=False):
        """The drop-in for the Governor's ``_check_portfolio_budget(symbol, plan_id)``: a Verdict
        that is truthy when the plan must be blocked. Pass the plan's size (``notional_usd``, or
        ``qty`` when the hash has a price) so that an opening plan can be judged; numbers may be
        strings, as in the Governor's plan data. Never raises."""
        started = time.perf_counter()
        request = {"planId": str(plan_id)[:PLAN_ID_MAX], "symbol": str(symbol), "action": str(action or "OPEN")[:64]}
        side = str(side or "").strip().upper()
        if side in ("BUY", "SELL"):
            request["side"] = side
        if _positive(qty) is not None:
            request["qty"] = _positive(qty)
        if _positive(notional_usd) is not None:
            request["notionalUsd"] = _positive(notional_usd)
        if reduce_only is True or str(reduce_only).lower() == "true":
            request["reduceOnly"] = True
        return Verdict.of(self.evaluate(request), time.perf_counter() - started)

    def check_plan(self, plan_id, data):
        """The Verdict for a plan as the Governor reads it from its stream (``symbol``, ``action``,
        ``side``, ``qty``, ``reduceOnly``, and ``notionalUsd`` or ``notional_usd``)."""
        return self.check_portfolio_budget(
            data.get("symbol", "UNKNOWN"), plan_id, action=data.get("action"), side=data.get("side"), qty=data.get("qty"),
            notional_usd=data.get("notionalUsd", data.get("notional_usd")), reduce_only=data.get("reduceOnly", False),
        )

    def release(self, plan_id, symbol):
        """Frees the headroom ``plan_id`` reserved on ``symbol`` at once: call it when the plan is
        filled, cancelled, or blocked by a later gate. True when a reservation was removed; False
        when there was none, the input is invalid, or Redis could not be asked (the reservation
        then lapses after its TTL). Never raises."""
        symbol = normalize_symbol(symbol)
        if not isinstance(plan_id, str) or not 1 <= len(plan_id) <= PLAN_ID_MAX or symbol is None:
            return False
        try:
            return int(self._release(keys=[self._budget_key(symbol)], args=[plan_id])) == 1
        except Exception as error:  # noqa: BLE001
            self._log.warning("budget gate could not release a reservation; it lapses on its own (plan %s, %s): %s", plan_id, symbol, error)
            return False

    def close(self):
        """Closes the gate's own connection pool (the client passed in stays open)."""
        self._closed = True
        if self._owns_pool:
            self._client.connection_pool.disconnect()

    # --- internals ---

    def _budget_key(self, symbol):
        return "%s:portfolio:budget:%s" % (self.key_prefix, symbol)

    def _bounded_client(self, given):
        """A client whose every call is bounded by ``timeout_sec`` and never retried."""
        t = self.timeout_sec
        bounded = {"socket_timeout": t, "socket_connect_timeout": t, "retry": Retry(NoBackoff(), 0), "retry_on_error": [], "health_check_interval": 0}
        if isinstance(given, str):
            return redis.Redis.from_url(given, **bounded), True
        pool = getattr(given, "connection_pool", None)
        if isinstance(given, redis.Redis) and type(pool) in (redis.ConnectionPool, redis.BlockingConnectionPool):
            kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in _POOL_BOUND}
            kwargs.update(bounded)
            for name in ("orig_socket_timeout", "orig_socket_connect_timeout"):
                if name in kwargs:
                    kwargs[name] = t
            if "retry_on_timeout" in kwargs:
                kwargs["retry_on_timeout"] = False
            return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)), True
        self._log.warning(
            "budget gate uses the %s passed in as it is: its own socket timeout bounds each decision, not timeout_sec",
            type(given).__name__,
        )
        return given, False

    def _judge(self, request):
        plan, detail = read_request(request)
        if plan is None:
            return Decision.fail_open_for("invalid_request", detail)
        if self.disabled:
            return Decision(True, "gate_disabled", source="none")
        if is_closing(plan):
            return Decision(True, "reduce_only", source="none")
        if self._closed:
            return Decision.fail_open_for("redis_unavailable", "gate_closed")
        if not self.breaker.allow():
            return Decision.fail_open_for("breaker_open", "breaker_open")
        args = [
            plan["planId"], plan["symbol"], plan.get("side", ""), _arg(plan.get("qty")), _arg(plan.get("notionalUsd")),
            _arg(self._now() * 1000), self._policy[0], self._policy[1], self._policy[2],
            "1" if self.force_shadow else "0", str(self._reservation_ttl_ms), "0",
        ]
        try:
            reply = self._decide(keys=[self._budget_key(plan["symbol"])], args=args)
        except redis.exceptions.TimeoutError as error:
            self.breaker.failure()
            return Decision.fail_open_for("timeout", str(error) or "timeout")
        except Exception as error:  # noqa: BLE001 - connection refused, reset, NOPERM, ...: all unavailable
            self.breaker.failure()
            return Decision.fail_open_for("redis_unavailable", str(error) or type(error).__name__)
        self.breaker.success()
        decision = decision_from_reply(reply)
        if decision.reason == "no_budget_data":
            self._check_prefix()
        return decision

    def _check_prefix(self):
        """A decision found no budget hash: once a minute at most, check that a worker writes under
        the key prefix at all. A wrong prefix fails every plan open as no_budget_data; that must be
        loud, not a quiet allow."""
        at = time.monotonic()
        if self._prefix_checked_at is not None and at - self._prefix_checked_at < self._prefix_check_every:
            return
        self._prefix_checked_at = at
        try:
            missing = self._client.exists("%s:p28:worker:heartbeat" % self.key_prefix) == 0
        except Exception:  # noqa: BLE001 - the next decision will say what is wrong with Redis
            return
        if missing:
            self.counters.misconfigured("no_worker_under_prefix")
            if not self._prefix_missing:
                self._log.error(
                    "budget gate: no P2.8 worker writes under key prefix %r (no %s:p28:worker:heartbeat); every plan fails open as no_budget_data. "
                    "Check key_prefix against the worker's P28_KEY_PREFIX.", self.key_prefix, self.key_prefix,
                )
        elif self._prefix_missing:
            self._log.info("budget gate: a P2.8 worker writes under key prefix %r again", self.key_prefix)
        self._prefix_missing = missing

    def _breaker_changed(self, state):
        self.counters.breaker(state)
        if state == "open":
            self._log.warning("budget gate breaker opened: failing open without asking Redis")
        elif state == "closed":
            self._log.info("budget gate breaker closed: asking Redis again")

    def _finish(self, request, decision):
        try:
            self.counters.decision(decision)
            plan_id = request.get("planId") if isinstance(request, dict) else None
            symbol = request.get("symbol") if isinstance(request, dict) else None
            if decision.fail_open:
                if decision.reason != self._last_fail_open:
                    self._log.warning(
                        "budget gate failing open: %s (%s) plan=%r symbol=%r previous=%s",
                        decision.reason, decision.detail, plan_id, symbol, self._last_fail_open,
                    )
                    self._last_fail_open = decision.reason
                return
            if self._last_fail_open in REDIS_CAUSES and decision.mode is not None:
                self._log.info("budget gate reading budgets again (previous: %s)", self._last_fail_open)
                self._last_fail_open = None
            if not decision.allow:
                self._log.warning("budget gate blocked a plan: plan=%r symbol=%r %s", plan_id, symbol, decision.as_dict())
            elif decision.would_block:
                self._log.info("budget gate would block a plan (shadow): plan=%r symbol=%r %s", plan_id, symbol, decision.as_dict())
        except Exception:  # noqa: BLE001 - logs and counters never turn a decision into an exception
            pass
