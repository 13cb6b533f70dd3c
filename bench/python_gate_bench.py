"""The Python side of `npm run bench` (bench/python-bench.ts starts it, pinned like the bench).

Measures, interleaved in blocks on one redis-server, with the Governor's own client
(redis-py, decode_responses=True):
- upstream: the upstream Governor's own check, as its _check_portfolio_budget reads (HGETALL of
  the budget hash, decoding, the mode and age checks, XREVRANGE COUNT 10 of the violation stream
  and json.loads of each entry's json field), written here from its access pattern;
- reserving: BudgetGate.check_portfolio_budget of a plan that reserves (released after its
  sample, outside the timing, as on a fill);
- blocked: BudgetGate.check_portfolio_budget of a plan the budget blocks;
- http: P28BudgetClient (keep-alive) asking POST /v1/decisions for the blocked plan;
- hgetall: a raw HGETALL of the budget hash, the floor of any path that reads it.
Then, at a Governor's pace (one decision every millisecond), the decision log's cost: the gate with
its log (the default) against the same gate without it and a second one without it (the control,
the measurement's own spread), taking turns in phases whose order rotates from round to round.
Prints one JSON object of samples in µs per scenario.
"""

import json
import logging
import sys
import time

import redis

from p28_budget_gate import BudgetGate
from p28_budget_gate.http_client import P28BudgetClient


def upstream_check(client, symbol):
    budget_data = client.hgetall("quantum:portfolio:budget:%s" % symbol)
    if not budget_data:
        return False
    decoded = {}
    for k, v in budget_data.items():
        key = k.decode() if isinstance(k, bytes) else k
        val = v.decode() if isinstance(v, bytes) else v
        decoded[key] = val
    if decoded.get("mode", "shadow") != "enforce":
        return False
    if time.time() - int(float(decoded.get("timestamp", 0))) > 60:
        return False
    float(decoded.get("budget_usd", 0))
    float(decoded.get("stress_factor", 0))
    for _, event_data in client.xrevrange("quantum:stream:budget.violation", count=10):
        event = json.loads(event_data.get("json") or event_data.get(b"json") or "{}")
        if event.get("symbol") == symbol and time.time() - event.get("timestamp", 0) < 30:
            return True
    return False


def main():
    port, samples, block, http_url, roomy, blocked = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
    paced_rounds, paced_phase_sec = int(sys.argv[7]), float(sys.argv[8])
    # Each block is logged at warning by design; the bench counts them instead.
    logging.getLogger("p28_budget_gate").setLevel(logging.ERROR)
    client = redis.Redis(port=int(port), decode_responses=True)
    gate = BudgetGate(client)
    fail_open = {}

    def acceptable(verdict, reason):
        # A loaded host can stall a call past timeout_sec: that is a fail-open, counted and reported
        # (never a block), not a wrong answer.
        if verdict.fail_open and verdict.reason in ("timeout", "breaker_open", "redis_unavailable", "client_timeout"):
            fail_open[verdict.reason] = fail_open.get(verdict.reason, 0) + 1
            return True
        return verdict.reason == reason
    http = P28BudgetClient(http_url, timeout_sec=1)
    counter = [0]

    def reserving():
        counter[0] += 1
        plan_id = "py-reserve-%d" % counter[0]
        started = time.perf_counter_ns()
        verdict = gate.check_portfolio_budget(roomy, plan_id, side="BUY", notional_usd=100)
        elapsed = (time.perf_counter_ns() - started) / 1000
        if not acceptable(verdict, "within_budget"):
            raise SystemExit("reserving plan: %r" % (verdict,))
        gate.release(plan_id, roomy)
        return elapsed

    def timed(fn, expect=None):
        def run():
            started = time.perf_counter_ns()
            out = fn()
            elapsed = (time.perf_counter_ns() - started) / 1000
            if expect is not None and not expect(out):
                raise SystemExit("unexpected answer: %r" % (out,))
            return elapsed
        return run

    scenarios = {
        "upstream": timed(lambda: upstream_check(client, blocked), lambda out: out is True),
        "reserving": reserving,
        "blocked": timed(lambda: gate.check_portfolio_budget(blocked, "py-blocked", side="BUY", notional_usd=100), lambda v: acceptable(v, "p28_budget_violation")),
        "http": timed(lambda: http.check_portfolio_budget(blocked, "py-http", side="BUY", notional_usd=100), lambda v: acceptable(v, "p28_budget_violation")),
        "hgetall": timed(lambda: client.hgetall("quantum:portfolio:budget:%s" % blocked)),
    }
    out = {name: [] for name in scenarios}
    for warm in (True, False):
        goal = max(block, samples // 10) if warm else samples
        taken = {name: [] for name in scenarios}
        while len(taken["upstream"]) < goal:
            for name, run in scenarios.items():
                for _ in range(block):
                    taken[name].append(run())
        if not warm:
            out = taken
    out.update(paced_samples(client, gate, roomy, paced_rounds, paced_phase_sec, acceptable))
    out["failOpen"] = fail_open
    print(json.dumps(out))


def paced(gate, symbol, seconds, acceptable):
    """One decision every millisecond (a sleep of 1 ms, then the call) for ``seconds``: µs of each."""
    out = []
    for _ in range(int(seconds * 1000)):
        time.sleep(0.001)
        started = time.perf_counter_ns()
        verdict = gate.check_portfolio_budget(symbol, "py-paced", side="BUY", notional_usd=100)
        out.append((time.perf_counter_ns() - started) / 1000)
        if not acceptable(verdict, "within_budget"):
            raise SystemExit("paced plan: %r" % (verdict,))
    return out


def settle(gate):
    """Waits for the log's queue to be written (2 s at most), so its last batch falls in its own phase."""
    deadline = time.monotonic() + 2
    while gate.decision_log is not None and gate.decision_log.pending > 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.02)


def paced_samples(client, logged, symbol, rounds, phase_sec, acceptable):
    """The logged gate, the same gate without the log, and the control, phases rotating by round."""
    without = BudgetGate(client, decision_log_max_len=0)
    control = BudgetGate(client, decision_log_max_len=0)

    def logged_phase():
        samples = paced(logged, symbol, phase_sec, acceptable)
        settle(logged)
        return samples

    phases = [
        ("paced_nolog", lambda: paced(without, symbol, phase_sec, acceptable)),
        ("paced_log", logged_phase),
        ("paced_control", lambda: paced(control, symbol, phase_sec, acceptable)),
    ]
    out = {name: [] for name, _ in phases}

    def fresh():
        # The hash as the worker keeps it: rewritten every few seconds, never stale.
        client.hset("quantum:portfolio:budget:%s" % symbol, "timestamp", str(int(time.time())))

    fresh()
    for name, run in phases:
        run()  # warm-up
    for round_ in range(rounds):
        fresh()
        for k in range(len(phases)):
            name, run = phases[(k + round_) % len(phases)]
            out[name].extend(run())
    return out


if __name__ == "__main__":
    main()
