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
    out["failOpen"] = fail_open
    print(json.dumps(out))


if __name__ == "__main__":
    main()
