"""The Python gate's counters: always kept in the gate, exported by prometheus_client when installed."""

import threading

__all__ = ["GateCounters", "DECISION_LOG_DROP_CAUSES"]

try:  # optional: a Governor that exports Prometheus metrics has it installed
    import prometheus_client as _prometheus
except ImportError:  # pragma: no cover - exercised where prometheus_client is absent
    _prometheus = None


_SHARED = {}
_SHARED_LOCK = threading.Lock()


def _prometheus_counters(registry):
    """The Prometheus counters on ``registry``, made once and shared by every gate and client on it."""
    target = registry if registry is not None else _prometheus.REGISTRY
    with _SHARED_LOCK:
        found = _SHARED.get(id(target))
        if found is not None and found[0] is target:
            return found[1]
        try:
            counters = {
                "decisions": _prometheus.Counter("p28_gate_decisions_total", "Budget gate decisions by outcome and reason.", ["decision", "reason"], registry=target),
                "breaker": _prometheus.Counter("p28_gate_breaker_transitions_total", "Budget gate breaker state changes.", ["state"], registry=target),
                "misconfigured": _prometheus.Counter("p28_gate_misconfigured_total", "Budget gate misconfigurations seen (key prefix without budgets, HTTP 401/404).", ["cause"], registry=target),
                "decision_log_dropped": _prometheus.Counter(
                    "p28_decision_log_dropped_total",
                    "Gate decisions not written to the decision log, by cause: queue_full (Redis slow or down and the in-memory queue full), "
                    "write_failed (a write Redis did not confirm), closed (queued when the gate closed). Decisions themselves are never affected.",
                    ["cause"], registry=target,
                ),
                "decision_log_written": _prometheus.Counter(
                    "p28_decision_log_written_total", "Gate decisions written to the decision log (quantum:stream:p28.decisions).", registry=target,
                ),
            }
        except ValueError:
            # Names taken on that registry by something else: the counters stay in the gate only.
            return None
        _SHARED[id(target)] = (target, counters)
        return counters


# Why a decision log entry was dropped: the label values of p28_decision_log_dropped_total{cause}.
DECISION_LOG_DROP_CAUSES = ("queue_full", "write_failed", "closed")


class GateCounters:
    """Decisions by outcome and reason, breaker transitions, loud misconfigurations, and the
    decision log's written and dropped entries.

    ``snapshot()`` gives them as a dict for any exporter. With prometheus_client installed they
    are also Prometheus counters on ``registry`` (default: prometheus_client's global registry),
    named as the Node gate's: ``p28_gate_decisions_total{decision,reason}``,
    ``p28_gate_breaker_transitions_total{state}``, ``p28_gate_misconfigured_total{cause}``
    (a key prefix under which no worker writes, a 401 or 404 from the worker's HTTP API),
    ``p28_decision_log_written_total`` and ``p28_decision_log_dropped_total{cause}``.
    """

    def __init__(self, registry=None, prometheus=True):
        self._lock = threading.Lock()
        self._values = {}
        self._prom = None
        if prometheus and _prometheus is not None:
            self._prom = _prometheus_counters(registry)

    def _inc(self, family, label, amount=1):
        key = (family, label)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount
        if self._prom is not None:
            counter = self._prom[family]
            (counter.labels(*label) if label else counter).inc(amount)

    def decision(self, decision):
        outcome = "block" if not decision.allow else "fail_open" if decision.fail_open else "allow"
        self._inc("decisions", (outcome, decision.reason))

    def breaker(self, state):
        self._inc("breaker", (state,))

    def misconfigured(self, cause):
        self._inc("misconfigured", (cause,))

    def decision_log_started(self):
        """Shows the decision log's counters at 0 from the start, every cause included."""
        with self._lock:
            self._values.setdefault(("decision_log_written", ()), 0)
            for cause in DECISION_LOG_DROP_CAUSES:
                self._values.setdefault(("decision_log_dropped", (cause,)), 0)
        if self._prom is not None:
            for cause in DECISION_LOG_DROP_CAUSES:
                self._prom["decision_log_dropped"].labels(cause)

    def decision_log_written(self, entries):
        if entries > 0:
            self._inc("decision_log_written", (), entries)

    def decision_log_dropped(self, cause, entries=1):
        if entries > 0:
            self._inc("decision_log_dropped", (cause,), entries)

    def get(self, family, *label):
        with self._lock:
            return self._values.get((family, tuple(label)), 0)

    def snapshot(self):
        with self._lock:
            return {
                "%s{%s}" % (family, ",".join(label)) if label else family: value for (family, label), value in sorted(self._values.items())
            }
