"""The Python gate's decision log: every decision appended to ``<prefix>:stream:p28.decisions``, off
the decision's path, in the entry format every gate writes (``types/decision-log-entry.ts``)."""

import atexit
import collections
import decimal
import logging
import os
import threading
import time
import weakref

from .connections import close_client, error_text

__all__ = ["DecisionLog", "DECISION_LOG_DEFAULTS", "BUDGET_HASH_FIELDS", "js_number", "pack_entry"]

LOG = logging.getLogger("p28_budget_gate")

# The Node gate's (plugin/decision-log.ts), in seconds.
DECISION_LOG_DEFAULTS = {
    # Approximate length bound of the stream (XADD MAXLEN ~); 0 turns the log off.
    "max_len": 1000000,
    # Entries held in memory at most, waiting to be written; past it an entry is dropped and counted.
    "queue_capacity": 10000,
    # Entries per write (one pipeline of XADDs, one round trip); one write is in flight at a time.
    "batch_entries": 256,
    # How long the first entry of a batch waits for others: one write carries many decisions.
    "flush_delay_sec": 0.005,
    # How long a batch that fell due then waits for the next decision's entry: it is written right
    # after that decision, when the next one is furthest away; without one, after this.
    "after_decision_wait_sec": 0.01,
    # After a failed write, how long the writer waits before the next one.
    "retry_delay_sec": 0.1,
    # Socket timeout of the log's own connections: a write Redis does not confirm within it is dropped.
    "write_timeout_sec": 2.0,
    # How long close() waits, at most, for the entries still queued to be written.
    "close_wait_sec": 1.0,
}

# The budget hash fields the decision script appends to its reply when asked (ARGV[12] = '1', or
# '2' when they differ from the gate's copy), in its order: types/budget-hash.ts BUDGET_HASH_FIELDS.
BUDGET_HASH_FIELDS = (
    "symbol", "budget_usd", "stress_factor", "equity_usd", "portfolio_heat", "cluster_stress", "vol_regime", "mode",
    "timestamp", "base_risk_pct", "position_amt", "position_notional_usd", "over_budget_usd", "last_violation_ts",
    "position_price", "position_status",
)
# The hash values an entry carries as read, between reserved_usd and the gate's windows.
_HASH_VALUES = (
    "equity_usd", "portfolio_heat", "cluster_stress", "vol_regime", "base_risk_pct", "stress_factor", "mode", "timestamp",
    "position_amt", "position_price", "position_status", "last_violation_ts",
)
FORMAT = "1"
SEPARATOR = "|"
STREAM_FIELD = "d"


def js_number(value):
    """A number as JavaScript's ``String(n)`` prints it, so both gates write the same text: the
    shortest digits that read back as the same double, with JavaScript's choice of notation
    (``100000`` not ``100000.0``, ``0.00001`` not ``1e-05``, ``1e+21``)."""
    number = float(value)
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    if number < 0:
        return "-" + js_number(-number)
    if number.is_integer() and number < 2**53:
        return str(int(number))
    shortest = repr(number)
    if "e" not in shortest:
        return shortest[:-2] if shortest.endswith(".0") else shortest
    sign, digits, exponent = decimal.Decimal(shortest).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = exponent + len(text)  # the value is 0.<text> x 10^point
    if 0 < point <= 21:
        return text[:point] + "." + text[point:] if point < len(text) else text + "0" * (point - len(text))
    if -6 < point <= 0:
        return "0." + "0" * -point + text
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return "%se%s%d" % (mantissa, "+" if point - 1 >= 0 else "-", abs(point - 1))


def _text(value):
    """A text value as written: ``|`` would split the entry, so it becomes ``/``."""
    return value.replace(SEPARATOR, "/") if SEPARATOR in value else value


def _number_text(value):
    return "" if value is None else js_number(value)


def _bit(value):
    return "1" if value else "0"


def pack_entry(ts_ms, plan, identity, decision, fields, gate, via, policy, force_shadow):
    """The packed value of one entry: every value of ``types/decision-log-entry.ts`` in order.

    ``plan`` is the valid request (``read_request``), else None with ``identity`` the planId and
    symbol of the invalid one; ``fields`` the budget hash fields the decision read, by name (None
    when it read none); ``policy`` the gate's three windows in ms, already joined."""
    plan = plan or {}
    identity = identity or {}
    h = fields or {}

    def from_hash(name, fallback):
        value = h.get(name)
        return value if value is not None else _number_text(fallback)

    reduce_only = plan.get("reduceOnly")
    values = [
        FORMAT,
        js_number(ts_ms),
        _text(plan.get("planId") or identity.get("planId") or ""),
        _text(plan.get("symbol") or identity.get("symbol") or ""),
        _text(plan.get("action", "")),
        plan.get("side", ""),
        _number_text(plan.get("qty")),
        _number_text(plan.get("notionalUsd")),
        "" if reduce_only is None else _bit(reduce_only),
        decision.reason,
        "" if decision.detail is None else _text(str(decision.detail)[:200]),
        _bit(decision.allow),
        _bit(decision.would_block),
        _bit(decision.fail_open),
        _bit(decision.enforced),
        decision.mode or "",
        decision.source or "none",
        gate,
        via,
        from_hash("budget_usd", decision.budget_usd),
        from_hash("position_notional_usd", decision.position_notional_usd),
        _number_text(decision.projected_notional_usd),
        _number_text(decision.reserved_usd),
    ]
    values.extend(_text(h.get(name) or "") for name in _HASH_VALUES)
    values.append(policy)
    values.append(_bit(force_shadow))
    return SEPARATOR.join(values)


class DecisionLog:
    """Appends the gate's decisions to the decision log stream, never on the decision's path.

    ``append`` puts one entry in a bounded in-memory queue and returns: a packed string, or a
    callable that packs it, called by the writer thread, off the decision's path. A daemon thread
    writes the queue in batches of up to ``batch_entries``, each one pipeline of
    ``XADD <stream> MAXLEN ~ <max_len> * d <entry>`` (one round trip, one key: it goes to the node
    that owns the stream's slot on Redis Cluster). When Redis is slow or down the queue fills and
    further entries are dropped; every entry is counted once, as written or as dropped by cause.
    A batch that fell due (``flush_delay_sec`` after its first entry) is written right after the
    next entry is appended, that is right after a decision: at a Governor's pace the next decision
    is then furthest away, so the writer's work rarely holds the interpreter while one waits for it.
    """

    def __init__(self, client, stream_key, max_len, counters, logger=None, *, queue_capacity=DECISION_LOG_DEFAULTS["queue_capacity"],
                 batch_entries=DECISION_LOG_DEFAULTS["batch_entries"], flush_delay_sec=DECISION_LOG_DEFAULTS["flush_delay_sec"],
                 retry_delay_sec=DECISION_LOG_DEFAULTS["retry_delay_sec"], owns_client=False, secrets=frozenset(),
                 after_decision_wait_sec=DECISION_LOG_DEFAULTS["after_decision_wait_sec"]):
        self._client = client
        self._secrets = secrets
        self._owns_client = owns_client
        self.stream_key = stream_key
        self._max_len = int(max_len)
        self._counters = counters
        self._log = logger or LOG
        self._capacity = queue_capacity
        self._batch = batch_entries
        self._flush_delay = flush_delay_sec
        self._after_decision_wait = after_decision_wait_sec
        # Entries appended so far, and whether the writer waits for the next one (a due batch).
        self._appended = 0
        self._awaiting_entry = False
        self._retry_delay = retry_delay_sec
        self._queue = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread = None
        self._closed = False
        self._close_deadline = None
        self._last_write_failed = False
        counters.decision_log_started()
        _LOGS.add(self)

    @property
    def pending(self):
        """Entries waiting in memory (at most the queue capacity)."""
        return len(self._queue)

    def append(self, entry):
        """Queues one entry (a packed string, or a callable that packs it). O(1): a full queue or a
        closed log drops it and counts it."""
        with self._cond:
            if self._closed:
                dropped = "closed"
            elif len(self._queue) >= self._capacity:
                dropped = "queue_full"
            else:
                self._queue.append(entry)
                self._appended += 1
                if self._thread is None:
                    self._start()
                elif len(self._queue) == 1 or self._awaiting_entry:
                    self._cond.notify()
                return
        self._counters.decision_log_dropped(dropped)

    def close(self, wait_sec=DECISION_LOG_DEFAULTS["close_wait_sec"]):
        """Writes what is queued, waiting at most ``wait_sec``; what is still queued then is counted
        as dropped (``closed``). The log's own connections are closed."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._close_deadline = time.monotonic() + max(0.0, wait_sec)
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(max(0.0, wait_sec))
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
        self._counters.decision_log_dropped("closed", left)
        _LOGS.discard(self)
        if self._owns_client:
            try:
                close_client(self._client)
            except Exception:  # noqa: BLE001 - closing never raises into the Governor
                pass

    # --- the writer thread ---

    def _start(self):
        self._thread = threading.Thread(target=self._run, name="p28-decision-log", daemon=True)
        self._thread.start()

    def _next_batch(self):
        """The next batch to write, or None when the thread is to end (closed, and done or out of time)."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                if not self._queue or self._last_write_failed or time.monotonic() >= self._close_deadline:
                    return None
            elif len(self._queue) < self._batch:
                # Let the batch fill a little: one write then carries many decisions.
                self._cond.wait(self._flush_delay)
                if not self._closed and len(self._queue) < self._batch:
                    # Then the next decision's entry: the write comes right after that decision.
                    seen = self._appended
                    self._awaiting_entry = True
                    self._cond.wait_for(lambda: self._appended != seen or self._closed, self._after_decision_wait)
                    self._awaiting_entry = False
            count = min(self._batch, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def _run(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch and not self._write(batch) and not self._closed:
                with self._cond:
                    self._cond.wait(self._retry_delay)

    def _write(self, batch):
        """Packs what is not packed yet, then one pipeline of XADDs; True when Redis confirmed every
        entry. Never raises: an entry that cannot be packed is counted as not written."""
        packed = []
        for entry in batch:
            try:
                packed.append(entry() if callable(entry) else entry)
            except Exception:  # noqa: BLE001 - nothing a decision holds should make packing raise; counted if it does
                pass
        unpacked = len(batch) - len(packed)
        try:
            pipe = self._client.pipeline(transaction=False)
            for entry in packed:
                pipe.xadd(self.stream_key, {STREAM_FIELD: entry}, maxlen=self._max_len, approximate=True)
            replies = pipe.execute(raise_on_error=False) if packed else []
            failed = sum(1 for reply in replies if isinstance(reply, Exception)) + max(0, len(packed) - len(replies))
            error = next((reply for reply in replies if isinstance(reply, Exception)), None)
        except Exception as caught:  # noqa: BLE001 - down, frozen, NOPERM, ...: the batch is not confirmed
            failed, error = len(packed), caught
        failed += unpacked
        self._counters.decision_log_written(len(batch) - failed)
        self._counters.decision_log_dropped("write_failed", failed)
        if (failed > 0) != self._last_write_failed:
            self._last_write_failed = failed > 0
            if failed:
                self._log.warning("decision log: a write failed; its entries are counted in p28_decision_log_dropped_total: %s", error_text(error, self._secrets))
            else:
                self._log.info("decision log: writing again")
        return failed == 0

    def _after_fork(self):
        # A forked child has the queue and lock as they were, but not the thread: it starts its own,
        # and the parent writes what was queued before the fork.
        self._cond = threading.Condition(threading.Lock())
        self._queue.clear()
        self._thread = None


_LOGS = weakref.WeakSet()


def _reset_after_fork():
    for log in list(_LOGS):
        log._after_fork()  # noqa: SLF001


def _close_at_exit():
    """A Governor that exits without closing its gate still writes what its logs hold, within one
    close wait for all of them together (the writer threads are daemons: nothing else waits for them)."""
    deadline = time.monotonic() + DECISION_LOG_DEFAULTS["close_wait_sec"]
    for log in list(_LOGS):
        log.close(max(0.0, deadline - time.monotonic()))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
atexit.register(_close_at_exit)
