"""The Python gate's counters: always kept in the gate, exported by prometheus_client when installed."""

import threading

__all__ = ["GateCounters"]

try:  # optional: a Governor that exports Prometheus metrics has it installed
    import prometheus_client as _prometheus
except ImportError:  # pragma: no cover - exercised where prometheus_client is absent
    _prometheus = None


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
            kwargs = {} if registry is None else {"registry": registry}
            try:
                self._prom = {
                    "decisions": _prometheus.Counter("p28_gate_decisions_total", "Budget gate decisions by outcome and reason.", ["decision", "reason"], **kwargs),
                    "breaker": _prometheus.Counter("p28_gate_breaker_transitions_total", "Budget gate breaker state changes.", ["state"], **kwargs),
                    "misconfigured": _prometheus.Counter("p28_gate_misconfigured_total", "Budget gate misconfigurations seen (key prefix without budgets, HTTP 401/404).", ["cause"], **kwargs),
                }
            except ValueError:
                # Already registered (a second gate on the same registry): keep the dict only.
                self._prom = None

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
