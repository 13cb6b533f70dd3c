"""The Python gate's counters: always kept in the gate, exported by prometheus_client when installed."""

import threading

__all__ = ["GateCounters"]

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
            }
        except ValueError:
            # Names taken on that registry by something else: the counters stay in the gate only.
            return None
        _SHARED[id(target)] = (target, counters)
        return counters


class GateCounters:
    """Decisions by outcome and reason, breaker transitions, and loud misconfigurations.

    ``snapshot()`` gives them as a dict for any exporter. With prometheus_client installed they
    are also Prometheus counters on ``registry`` (default: prometheus_client's global registry),
    named as the Node gate's: ``p28_gate_decisions_total{decision,reason}``,
    ``p28_gate_breaker_transitions_total{state}``, and ``p28_gate_misconfigured_total{cause}``
    (a key prefix under which no worker writes, a 401 or 404 from the worker's HTTP API).
    """

    def __init__(self, registry=None, prometheus=True):
        self._lock = threading.Lock()
        self._values = {}
        self._prom = None
        if prometheus and _prometheus is not None:
            self._prom = _prometheus_counters(registry)

    def _inc(self, family, label):
        key = (family, label)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + 1
        if self._prom is not None:
            counter = self._prom[family]
            counter.labels(*label).inc()

    def decision(self, decision):
        outcome = "block" if not decision.allow else "fail_open" if decision.fail_open else "allow"
        self._inc("decisions", (outcome, decision.reason))

    def breaker(self, state):
        self._inc("breaker", (state,))

    def misconfigured(self, cause):
        self._inc("misconfigured", (cause,))

    def get(self, family, *label):
        with self._lock:
            return self._values.get((family, tuple(label)), 0)

    def snapshot(self):
        with self._lock:
            return {"%s{%s}" % (family, ",".join(label)): value for (family, label), value in sorted(self._values.items())}
