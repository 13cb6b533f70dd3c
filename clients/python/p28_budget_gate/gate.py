"""The P2.8 budget gate, in-process for a Python Governor."""

import functools
import logging
import math
import os
import pkgutil
import re
import socket
import time

import redis

from .breaker import Breaker
from .connections import bounded_client, close_client, error_text, secrets_of
from .counters import GateCounters
from .decision import FAIL_OPEN_REASONS, PLAN_ID_MAX, Decision, Verdict, is_closing, normalize_symbol, read_request
from .decision_log import BUDGET_HASH_FIELDS, DECISION_LOG_DEFAULTS, DecisionLog, pack_entry

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
    # Approximate length bound of the decision log <prefix>:stream:p28.decisions (XADD MAXLEN ~);
    # 0 turns the log off (the Node gate's decisionLogMaxLen).
    "decision_log_max_len": DECISION_LOG_DEFAULTS["max_len"],
}

PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
INSTANCE_ID_PATTERN = re.compile(r"\S{1,200}\Z")
REDIS_CAUSES = frozenset(["redis_unavailable", "timeout", "breaker_open"])
# The decision script's reply: 7 values, then the budget hash fields when asked for them.
REPLY_LENGTH = 7
# What the script appends instead of the fields when they equal the gate's copy (ARGV[12] = '2').
SAME_FIELDS = "="
# Symbols whose known fields the gate keeps a copy of, at most (the oldest change goes first).
KNOWN_FIELDS_SYMBOLS = 10000


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


def _hash_fields(reply):
    """The budget hash fields the decision script appended to its reply, by name (those present)."""
    values = reply[REPLY_LENGTH:REPLY_LENGTH + len(BUDGET_HASH_FIELDS)]
    return {name: _text(value) for name, value in zip(BUDGET_HASH_FIELDS, values) if value is not None and value is not False}


def _joined_copy(values):
    """The known fields' values joined as the script joins the stored ones (NUL bytes between them,
    nothing for a missing one), or None when such a copy could not be compared exactly (a value
    that is empty or holds a NUL byte): the script is then asked for every value."""
    parts = []
    for value in values:
        if value is None or value is False:
            parts.append(b"")
            continue
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if raw == b"" or b"\0" in raw:
            return None
        parts.append(raw)
    return b"\0".join(parts)


def _request_identity(request):
    """planId and symbol of a request that is not a valid plan, cut short (the Node gate's requestIdentity)."""
    if not isinstance(request, dict):
        return {}
    plan_id, symbol = request.get("planId"), request.get("symbol")
    return {"planId": plan_id[:PLAN_ID_MAX] if isinstance(plan_id, str) else None, "symbol": symbol[:40] if isinstance(symbol, str) else None}


def default_instance_id():
    """The gate's name in its decision log entries unless given: host-pid, as the Node gate's."""
    return "%s-%d" % (socket.gethostname(), os.getpid())


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
    configured with: the gate talks through connections of its own, made from the client's
    settings with ``timeout_sec`` as socket and connect timeout and no retries (a copy of its
    connection pool; for a Sentinel-managed client, a Sentinel pool for the same service; for a
    ``RedisCluster``, a RedisCluster seeded with its nodes). A circuit breaker with the Node gate's
    rules stops asking a Redis that keeps failing. Nothing ever raises into the Governor, and no
    Redis failure can turn into a block: every way of not knowing is a fail-open allow with its
    reason, logged once per change of cause (logger ``p28_budget_gate``) and counted.

    Every decision is also appended to the decision log ``<key_prefix>:stream:p28.decisions`` in
    the entry format every gate writes (``via`` = ``python``, ``gate`` = ``instance_id``), off the
    decision's path: a bounded queue written by a daemon thread (``decision_log.DecisionLog``).
    ``decision_log_max_len`` bounds the stream; 0 turns the log off.
    """

    name = "p28_budget"

    def __init__(self, redis_client_or_url, *, key_prefix=DEFAULTS["key_prefix"], timeout_sec=DEFAULTS["timeout_sec"],
                 reservation_ttl_sec=DEFAULTS["reservation_ttl_sec"], stale_after_sec=DEFAULTS["stale_after_sec"],
                 violation_window_sec=DEFAULTS["violation_window_sec"], max_clock_skew_sec=DEFAULTS["max_clock_skew_sec"],
                 error_threshold_percentage=DEFAULTS["error_threshold_percentage"], volume_threshold=DEFAULTS["volume_threshold"],
                 consecutive_failures_to_open=DEFAULTS["consecutive_failures_to_open"], failure_streak_sec=DEFAULTS["failure_streak_sec"],
                 reset_timeout_sec=DEFAULTS["reset_timeout_sec"], prefix_check_every_sec=DEFAULTS["prefix_check_every_sec"],
                 decision_log_max_len=DEFAULTS["decision_log_max_len"], instance_id=None,
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
        if isinstance(decision_log_max_len, bool) or not isinstance(decision_log_max_len, int) or not 0 <= decision_log_max_len <= 10**9:
            issues.append("decision_log_max_len: a whole number in [0, 1000000000] (0 turns the log off)")
        if instance_id is not None and (not isinstance(instance_id, str) or not INSTANCE_ID_PATTERN.match(instance_id)):
            issues.append("instance_id: 1 to 200 characters without spaces")
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
        self._secrets = secrets_of(redis_client_or_url)
        self._client, self._owns_pool = bounded_client(redis_client_or_url, self.timeout_sec)
        if not self._owns_pool:
            self._log.warning(
                "budget gate uses the %s passed in as it is (not a redis.Redis nor a RedisCluster it can copy): "
                "its own socket timeout bounds each decision, not timeout_sec",
                type(redis_client_or_url).__name__,
            )
        self.instance_id = instance_id or default_instance_id()
        self.decision_log = None
        if decision_log_max_len > 0:
            writer, owned = bounded_client(redis_client_or_url, DECISION_LOG_DEFAULTS["write_timeout_sec"])
            self.decision_log = DecisionLog(
                writer, "%s:stream:p28.decisions" % key_prefix, decision_log_max_len, self.counters, self._log, owns_client=owned,
                secrets=self._secrets,
            )
        # symbol -> (hash fields by name, their joined copy or None): what the script last returned,
        # so that a decision asks for the fields only when they changed (ARGV[12] = '2').
        self._known = {}
        self._log_policy = "|".join(self._policy)
        self._gate_text = self.instance_id.replace("|", "/")
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
        plan, fields = None, None
        try:
            plan, decision = self._judge_without_redis(request)
            if decision is None:
                decision, fields = self._judge_with_redis(plan)
        except Exception as error:  # noqa: BLE001 - a permit check must never raise into the Governor
            decision = Decision.fail_open_for("redis_unavailable", "unexpected: %s" % error_text(error, self._secrets))
        self._finish(request, decision)
        self._log_decision(request, plan, decision, fields)
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
            self._log.warning("budget gate could not release a reservation; it lapses on its own (plan %s, %s): %s", plan_id, symbol, error_text(error, self._secrets))
            return False

    def close(self, wait_sec=DECISION_LOG_DEFAULTS["close_wait_sec"]):
        """Writes the decision log entries still queued, waiting at most ``wait_sec`` (what is left
        then is counted as dropped, ``closed``), and closes the gate's own connection pools (the
        client passed in stays open). Decisions after it fail open (``gate_closed``)."""
        self._closed = True
        if self.decision_log is not None:
            self.decision_log.close(wait_sec)
        if self._owns_pool:
            try:
                close_client(self._client)
            except Exception:  # noqa: BLE001 - closing never raises into the Governor
                pass

    # --- internals ---

    def _budget_key(self, symbol):
        return "%s:portfolio:budget:%s" % (self.key_prefix, symbol)

    def _judge_without_redis(self, request):
        """``(plan, decision)`` when the decision needs no Redis, else ``(plan, None)``."""
        plan, detail = read_request(request)
        if plan is None:
            return None, Decision.fail_open_for("invalid_request", detail)
        if self.disabled:
            return plan, Decision(True, "gate_disabled", source="none")
        if is_closing(plan):
            return plan, Decision(True, "reduce_only", source="none")
        if self._closed:
            return plan, Decision.fail_open_for("redis_unavailable", "gate_closed")
        if not self.breaker.allow():
            return plan, Decision.fail_open_for("breaker_open", "breaker_open")
        return plan, None

    def _judge_with_redis(self, plan):
        """``(decision, hash fields)``: one call of the decision script; the fields it read when the
        decision log is on (for its entry), else None."""
        copy = None if self.decision_log is None else self._known.get(plan["symbol"])
        joined = None if copy is None else copy[1]
        args = [
            plan["planId"], plan["symbol"], plan.get("side", ""), _arg(plan.get("qty")), _arg(plan.get("notionalUsd")),
            _arg(self._now() * 1000), self._policy[0], self._policy[1], self._policy[2],
            "1" if self.force_shadow else "0", str(self._reservation_ttl_ms),
            "0" if self.decision_log is None else "1" if joined is None else "2",
        ]
        if joined is not None:
            args.append(joined)
        try:
            reply = self._decide(keys=[self._budget_key(plan["symbol"])], args=args)
        except redis.exceptions.TimeoutError as error:
            self.breaker.failure()
            return Decision.fail_open_for("timeout", error_text(error, self._secrets)), None
        except Exception as error:  # noqa: BLE001 - connection refused, reset, NOPERM, ...: all unavailable
            self.breaker.failure()
            return Decision.fail_open_for("redis_unavailable", error_text(error, self._secrets)), None
        self.breaker.success()
        decision = decision_from_reply(reply)
        if decision.reason == "no_budget_data":
            self._check_prefix()
        return decision, (None if self.decision_log is None else self._fields_of(plan["symbol"], reply, copy))

    def _fields_of(self, symbol, reply, copy):
        """The budget hash fields a decision was judged on: those the reply carries (kept as the
        symbol's copy), or the copy the call was made with when the script found them the same;
        None when the reply has neither (a key that holds no hash)."""
        if len(reply) > REPLY_LENGTH + 1:
            fields = _hash_fields(reply)
            self._known.pop(symbol, None)
            self._known[symbol] = (fields, _joined_copy(reply[REPLY_LENGTH:REPLY_LENGTH + len(BUDGET_HASH_FIELDS)]))
            if len(self._known) > KNOWN_FIELDS_SYMBOLS:
                try:
                    self._known.pop(next(iter(self._known)), None)
                except (RuntimeError, StopIteration):  # another thread changed the copies meanwhile: next time
                    pass
            return fields
        if len(reply) == REPLY_LENGTH + 1 and _text(reply[REPLY_LENGTH]) == SAME_FIELDS and copy is not None:
            return copy[0]
        return None

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

    def _log_decision(self, request, plan, decision, fields):
        """Queues the decision's entry in the decision log (when on): what it needs is taken now (a
        copy of the decision; the plan and the fields are the gate's own and never changed), and it
        is packed by the log's writer thread, off the decision's path."""
        if self.decision_log is None:
            return
        try:
            entry = functools.partial(
                pack_entry, int(round(self._now() * 1000)), plan, None if plan is not None else _request_identity(request), decision.copy(),
                fields, self._gate_text, "python", self._log_policy, self.force_shadow,
            )
            self.decision_log.append(entry)
        except Exception:  # noqa: BLE001 - the log never turns a decision into an exception
            pass
