"""The Python gate's decision log against a real redis-server: entries, batches, bounds, drops, close."""

import subprocess
import sys
import threading
import time

import pytest
import redis

from p28_budget_gate import BudgetGate
from p28_budget_gate.decision_log import DecisionLog, js_number
from p28_budget_gate.counters import GateCounters

from conftest import budget_fields, free_port, prometheus_registry

KEY = "quantum:portfolio:budget:ETHUSDT"
STREAM = "quantum:stream:p28.decisions"
FIELDS = (
    "v ts plan_id symbol action side qty notional_usd reduce_only reason detail allow would_block fail_open enforced mode source gate via "
    "budget_usd position_notional_usd projected_notional_usd reserved_usd equity_usd portfolio_heat cluster_stress vol_regime base_risk_pct "
    "stress_factor hash_mode hash_ts position_amt position_price position_status last_violation_ts stale_after_ms violation_window_ms "
    "max_clock_skew_ms force_shadow"
).split()
NOW_MS = 1767225600123


@pytest.fixture
def gates(server, admin):
    """Makes gates that are closed after the test, passed or not: no writer outlives its test."""
    made = []

    def make(*args, **kwargs):
        gate = BudgetGate(*args, **kwargs)
        made.append(gate)
        return gate

    yield make
    server.resume()
    for gate in made:
        gate.close(1)


def entries(client, stream=STREAM):
    """The stream's entries as dicts of their values by name (types/decision-log-entry.ts)."""
    out = []
    for _, fields in client.xrange(stream):
        assert list(fields) == ["d"]
        values = fields["d"].split("|")
        assert len(values) == len(FIELDS)
        out.append(dict(zip(FIELDS, values)))
    return out


def written(gate):
    return gate.counters.get("decision_log_written")


def dropped(gate, cause=None):
    causes = [cause] if cause else ["queue_full", "write_failed", "closed"]
    return sum(gate.counters.get("decision_log_dropped", c) for c in causes)


def assert_within_time_limit(elapsed, timeout_sec):
    """Decisions keep the gate's time limit: nearly all within it plus the usual margin, and none
    anywhere near the log's write timeout (2 s), which one waiting on a log write would take."""
    ordered = sorted(elapsed)
    assert ordered[int(len(ordered) * 0.99)] < timeout_sec + 0.15, ordered[-10:]
    assert ordered[-1] < 1.0, ordered[-10:]


def open_plan(plan_id, **extra):
    request = {"planId": plan_id, "symbol": "ETHUSDT", "action": "OPEN", "side": "BUY"}
    request.update(extra)
    return request


@pytest.mark.parametrize("decode", [True, False])
def test_writes_one_entry_per_decision_in_the_format_every_gate_writes(server, admin, gates, decode):
    admin.hset(KEY, mapping=budget_fields(timestamp=str(NOW_MS // 1000 - 2), last_violation_ts=str(NOW_MS // 1000 - 100)))
    gate = gates(redis.Redis(port=server.port, decode_responses=decode), instance_id="gov-host-4242", now=lambda: NOW_MS / 1000)
    reasons = [
        gate.evaluate(open_plan("p-within", qty=0.01, reduceOnly=False)).reason,
        gate.evaluate(open_plan("plan-42", qty=0.4)).reason,
        gate.evaluate({"planId": "p-close", "symbol": "ETHUSDT", "action": "CLOSE"}).reason,
        gate.evaluate({"planId": "p|bad", "symbol": "eth*", "action": "OPEN"}).reason,
    ]
    gate.close()
    assert reasons == ["within_budget", "p28_budget_violation", "reduce_only", "invalid_request"]
    assert written(gate) == 4 and dropped(gate) == 0
    within, over, closing, invalid = entries(admin)
    # Everything the decision used: plan, decision, gate, the hash as read, the gate's windows.
    assert "|".join(over[name] for name in FIELDS) == (
        "1|1767225600123|plan-42|ETHUSDT|OPEN|BUY|0.4|||p28_budget_violation|projected_over_budget|0|1|0|1|enforce|redis|gov-host-4242|python|"
        "1348|1000|1410|10|100000|0.65|0|0.33|0.02|0.326|enforce|1767225598|1|1000|ok|1767225500|60000|30000|5000|0"
    )
    assert within["reduce_only"] == "0" and within["reserved_usd"] == "0" and within["allow"] == "1" and within["qty"] == "0.01"
    assert closing["reason"] == "reduce_only" and closing["source"] == "none" and closing["hash_ts"] == "" and closing["mode"] == ""
    assert invalid["plan_id"] == "p/bad" and invalid["symbol"] == "eth*" and invalid["detail"] == "symbol" and invalid["fail_open"] == "1"


def test_numbers_are_written_as_javascript_prints_them():
    cases = {0.1: "0.1", 100000.0: "100000", 1e-7: "1e-7", 0.00001: "0.00001", 1e21: "1e+21", 1.5e300: "1.5e+300",
             123456789012345680000.0: "123456789012345680000", 2.0 ** 60: "1152921504606847000", 17: "17", -2.5: "-2.5"}
    assert {value: js_number(value) for value in cases} == cases


def test_writes_in_batches_of_one_pipeline_each(server, admin, gates):
    executes = []

    class Counting(redis.Redis):
        def pipeline(self, *args, **kwargs):
            pipe = super().pipeline(*args, **kwargs)
            execute = pipe.execute

            def counted(*a, **k):
                executes.append(len(pipe.command_stack))
                return execute(*a, **k)

            pipe.execute = counted
            return pipe

    log = DecisionLog(Counting(port=server.port, decode_responses=True), STREAM, 1000000, GateCounters(prometheus=False))
    for i in range(1000):
        log.append("entry-%d" % i)
    log.close(5)
    assert [fields["d"] for _, fields in admin.xrange(STREAM)] == ["entry-%d" % i for i in range(1000)]
    assert sum(executes) == 1000 and max(executes) <= 256
    assert len(executes) <= 50, "1000 entries queued at once went out in %d writes" % len(executes)


def test_a_due_batch_is_written_right_after_the_next_decision_and_after_a_bounded_wait_without_one(server, admin, gates):
    client = redis.Redis(port=server.port, decode_responses=True)
    waiting = DecisionLog(client, STREAM, 1000000, GateCounters(prometheus=False), flush_delay_sec=0.005, after_decision_wait_sec=30)
    waiting.append("first")
    # Long past its flush delay, the batch still waits for the next decision's entry.
    time.sleep(0.3)
    assert admin.xlen(STREAM) == 0
    waiting.append(lambda: "second")  # packed by the writer thread
    deadline = time.monotonic() + 5
    while admin.xlen(STREAM) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert [fields["d"] for _, fields in admin.xrange(STREAM)] == ["first", "second"]
    waiting.close(1)
    # Without a next decision, a due batch goes out after the bounded wait.
    alone = DecisionLog(client, STREAM, 1000000, GateCounters(prometheus=False), flush_delay_sec=0.005, after_decision_wait_sec=0.05)
    alone.append("third")
    deadline = time.monotonic() + 5
    while admin.xlen(STREAM) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert admin.xlen(STREAM) == 3
    alone.close(1)


def test_an_entry_that_cannot_be_packed_is_counted_as_not_written(server, admin, gates):
    counters = GateCounters(prometheus=False)
    log = DecisionLog(redis.Redis(port=server.port, decode_responses=True), STREAM, 1000000, counters)

    def broken():
        raise ValueError("cannot pack")

    log.append(broken)
    log.append("fine")
    log.close(5)
    assert [fields["d"] for _, fields in admin.xrange(STREAM)] == ["fine"]
    assert counters.get("decision_log_written") == 1
    assert counters.get("decision_log_dropped", "write_failed") == 1


def test_keeps_the_stream_near_its_bound(server, admin, gates):
    gate = gates(server.url, decision_log_max_len=100)
    for i in range(1000):
        gate.evaluate({"planId": "c-%d" % i, "symbol": "ETHUSDT", "action": "CLOSE"})
    gate.close(5)
    assert written(gate) == 1000
    assert 100 <= admin.xlen(STREAM) < 1000


def test_a_frozen_redis_fills_the_bounded_queue_and_the_rest_is_dropped_and_counted_while_decisions_keep_their_time_limit(server, admin, gates):
    admin.hset(KEY, mapping=budget_fields(position_amt="0", position_notional_usd="0"))
    gate = gates(server.url, timeout_sec=0.05, reservation_ttl_sec=1)
    capacity = 10000
    total = capacity + 2000
    server.pause()
    elapsed = []
    try:
        for i in range(total):
            started = time.perf_counter()
            decision = gate.evaluate(open_plan("frozen-%d" % i, notionalUsd=1))
            elapsed.append(time.perf_counter() - started)
            assert decision.allow and decision.fail_open
        assert gate.decision_log.pending <= capacity
        assert dropped(gate, "queue_full") >= 1
    finally:
        server.resume()
    assert_within_time_limit(elapsed, 0.05)
    gate.close(5)
    # Every decision is accounted for once: written, or dropped with its cause.
    assert written(gate) + dropped(gate) == total
    # A write Redis did not confirm in time may still have been applied when it woke up.
    assert written(gate) <= admin.xlen(STREAM) <= written(gate) + dropped(gate, "write_failed")


def test_a_redis_that_is_down_costs_decisions_nothing_and_every_entry_is_counted(server, admin, gates):
    gate = gates("redis://127.0.0.1:%d" % free_port(), timeout_sec=0.05)
    elapsed = []
    for i in range(500):
        started = time.perf_counter()
        assert gate.evaluate(open_plan("down-%d" % i, notionalUsd=1)).reason in ("redis_unavailable", "breaker_open")
        elapsed.append(time.perf_counter() - started)
    started = time.perf_counter()
    gate.close(0.5)
    assert time.perf_counter() - started < 0.5 + 2.5
    assert_within_time_limit(elapsed, 0.05)
    assert written(gate) == 0 and dropped(gate) == 500 and dropped(gate, "write_failed") >= 1


def test_close_writes_what_is_queued(server, admin, gates):
    gate = gates(server.url)
    for i in range(300):
        gate.evaluate({"planId": "c-%d" % i, "symbol": "ETHUSDT", "action": "CLOSE"})
    gate.close()
    assert admin.xlen(STREAM) == 300 and written(gate) == 300 and dropped(gate) == 0
    after = gate.evaluate({"planId": "late", "symbol": "ETHUSDT", "action": "OPEN", "side": "BUY", "notionalUsd": 1})
    assert after.reason == "redis_unavailable" and after.detail == "gate_closed"
    assert dropped(gate, "closed") == 1 and admin.xlen(STREAM) == 300


def test_close_on_a_frozen_redis_returns_within_its_wait_and_counts_what_was_not_written(server, admin, gates):
    gate = gates(server.url)
    gate.evaluate({"planId": "warm", "symbol": "ETHUSDT", "action": "CLOSE"})
    deadline = time.monotonic() + 5
    while written(gate) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.pause()
    try:
        for i in range(100):
            gate.evaluate({"planId": "c-%d" % i, "symbol": "ETHUSDT", "action": "CLOSE"})
        started = time.perf_counter()
        gate.close(0.3)
        assert time.perf_counter() - started < 0.3 + 0.5
    finally:
        server.resume()
    deadline = time.monotonic() + 5
    while written(gate) + dropped(gate) < 101:
        assert time.monotonic() < deadline, gate.counters.snapshot()
        time.sleep(0.01)
    assert dropped(gate, "closed") + dropped(gate, "write_failed") == 100


def test_the_off_switch_writes_nothing_and_asks_the_script_for_no_hash_fields(server, admin, gates):
    admin.hset(KEY, mapping=budget_fields())
    threads = {t.name for t in threading.enumerate()}
    gate = gates(server.url, decision_log_max_len=0)
    assert gate.decision_log is None
    assert gate.check_portfolio_budget("ETHUSDT", "p", side="BUY", qty=0.4).reason == "p28_budget_violation"
    gate.close()
    assert admin.exists(STREAM) == 0
    assert "decision_log_written" not in gate.counters.snapshot()
    assert {t.name for t in threading.enumerate()} - threads == set()
    with pytest.raises(ValueError, match="decision_log_max_len.*instance_id"):
        BudgetGate(server.url, decision_log_max_len=-1, instance_id="has space")
    with pytest.raises(ValueError, match="decision_log_max_len"):
        BudgetGate(server.url, decision_log_max_len=1.5)


def test_writes_under_the_key_prefix_and_exports_its_counters(server, admin, gates):
    registry = prometheus_registry()
    gate = gates(server.url, key_prefix="desk2", registry=registry)
    assert registry.get_sample_value("p28_decision_log_dropped_total", {"cause": "queue_full"}) == 0
    gate.evaluate({"planId": "c", "symbol": "ETHUSDT", "action": "CLOSE"})
    gate.close()
    gate.evaluate({"planId": "late", "symbol": "ETHUSDT", "action": "CLOSE"})
    assert admin.xlen("desk2:stream:p28.decisions") == 1 and admin.exists(STREAM) == 0
    assert registry.get_sample_value("p28_decision_log_written_total") == 1
    assert registry.get_sample_value("p28_decision_log_dropped_total", {"cause": "closed"}) == 1
    assert gate.counters.snapshot()["decision_log_written"] == 1


def test_a_governor_that_exits_without_closing_its_gate_still_writes_what_it_decided(server, admin):
    program = "\n".join([
        "from p28_budget_gate import BudgetGate",
        "gate = BudgetGate(%r)" % server.url,
        "for i in range(50):",
        "    gate.evaluate({'planId': 'exit-%d' % i, 'symbol': 'ETHUSDT', 'action': 'CLOSE'})",
    ])
    subprocess.run([sys.executable, "-c", program], check=True, timeout=30)
    assert [e["plan_id"] for e in entries(admin)] == ["exit-%d" % i for i in range(50)]


@pytest.mark.parametrize("decode", [True, False])
def test_asks_the_script_for_the_hash_fields_only_when_they_changed_and_logs_each_decision_with_its_own(server, admin, gates, decode):
    admin.hset(KEY, mapping=budget_fields(timestamp=str(NOW_MS // 1000 - 2)))
    gate = gates(redis.Redis(port=server.port, decode_responses=decode), now=lambda: NOW_MS / 1000, reservation_ttl_sec=0)
    lengths = []
    decide = gate._decide

    def spy(*args, **kwargs):
        reply = decide(*args, **kwargs)
        lengths.append(len(reply))
        return reply

    gate._decide = spy
    assert gate.evaluate(open_plan("p1", qty=0.01)).reason == "within_budget"
    assert gate.evaluate(open_plan("p2", qty=0.01)).reason == "within_budget"
    admin.hset(KEY, "equity_usd", "90000")  # the worker writes again
    gate.evaluate(open_plan("p3", qty=0.01))
    gate.evaluate(open_plan("p4", qty=0.01))
    admin.set(KEY, "not a hash")
    assert gate.evaluate(open_plan("p5", qty=0.01)).detail == "wrong_type"
    gate.close()
    # Every value on the first call and after the write, '=' when unchanged, the decision alone for a wrong type.
    assert lengths == [23, 8, 23, 8, 7]
    assert [e["equity_usd"] for e in entries(admin)] == ["100000", "100000", "90000", "90000", ""]


def test_a_copy_with_an_empty_value_or_a_nul_byte_is_never_sent():
    from p28_budget_gate.gate import _joined_copy

    assert _joined_copy([b"ETHUSDT", None, "0.5"]) == b"ETHUSDT\x00\x000.5"
    assert _joined_copy(["ETHUSDT", ""]) is None
    assert _joined_copy([b"a\x00b"]) is None
