"""The in-process Python gate against a real redis-server: reservations, timeouts, visibility."""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from p28_budget_gate import BudgetGate, Decision, Verdict

from conftest import budget_fields, prometheus_registry, reserved_plans

KEY = "quantum:portfolio:budget:ETHUSDT"
FLAT = {"position_amt": "0", "position_notional_usd": "0", "position_price": None}


@pytest.mark.parametrize("decode", [True, False])
def test_works_with_the_governors_own_client_decoding_or_not(server, admin, decode):
    admin.hset(KEY, mapping=budget_fields())
    governor_client = redis.Redis(port=server.port, decode_responses=decode)
    gate = BudgetGate(governor_client)
    verdict = gate.check_portfolio_budget("ETHUSDT", "p-add", side="BUY", qty="0.4")
    assert isinstance(verdict, Verdict) and verdict
    assert verdict.reason == "p28_budget_violation" and verdict.decision.detail == "projected_over_budget"
    assert verdict.decision.as_dict()["projectedNotionalUsd"] == 1400
    assert not gate.check_portfolio_budget("ETHUSDT", "p-small", side="BUY", qty=0.1)
    assert not gate.check_portfolio_budget("ETHUSDT", "p-close", action="FULL_CLOSE_PROPOSED")
    gate.close()
    assert governor_client.ping()


def test_allows_exactly_13_of_24_concurrent_opens_of_100_usd_against_1348(server, admin):
    admin.hset(KEY, mapping=budget_fields(**FLAT))
    gates = [BudgetGate(server.url, timeout_sec=2) for _ in range(3)]
    start = threading.Barrier(24)

    def ask(i):
        start.wait()
        return gates[i % 3].check_portfolio_budget("ETHUSDT", "burst-%d" % i, side="BUY", notional_usd=100)

    with ThreadPoolExecutor(24) as pool:
        verdicts = list(pool.map(ask, range(24)))
    assert all(not v.fail_open for v in verdicts)
    assert sum(1 for v in verdicts if not v) == 13
    assert len(reserved_plans(admin)) == 13


def test_counts_the_same_plan_id_asked_twice_as_one_plan(server, admin):
    admin.hset(KEY, mapping=budget_fields(**FLAT))
    gate = BudgetGate(server.url)
    first = gate.evaluate({"planId": "retry", "symbol": "ETHUSDT", "action": "OPEN", "side": "BUY", "notionalUsd": 1000})
    again = gate.evaluate({"planId": "retry", "symbol": "ETHUSDT", "action": "OPEN", "side": "BUY", "notionalUsd": 1000})
    assert first == again and first.reason == "within_budget" and first.reserved_usd == 0
    assert reserved_plans(admin) == ["retry"]
    assert gate.check_portfolio_budget("ETHUSDT", "other", side="BUY", notional_usd=400).reason == "p28_budget_violation"


def test_a_reservation_lapses_after_its_ttl(server, admin):
    admin.hset(KEY, mapping=budget_fields(**FLAT))
    gate = BudgetGate(server.url, reservation_ttl_sec=0.3)
    assert gate.check_portfolio_budget("ETHUSDT", "a", side="BUY", notional_usd=1000).reason == "within_budget"
    assert gate.check_portfolio_budget("ETHUSDT", "b", side="BUY", notional_usd=1000).reason == "p28_budget_violation"
    deadline = time.monotonic() + 5
    while gate.check_portfolio_budget("ETHUSDT", "b", side="BUY", notional_usd=1000).reason != "within_budget":
        assert time.monotonic() < deadline, "the reservation did not lapse within 5 s"
        time.sleep(0.05)
    assert reserved_plans(admin) == ["b"]


def test_release_frees_the_headroom_at_once(server, admin):
    admin.hset(KEY, mapping=budget_fields(**FLAT))
    gate = BudgetGate(server.url)
    assert gate.check_portfolio_budget("ETHUSDT", "filled", side="BUY", notional_usd=1000).reason == "within_budget"
    assert gate.release("filled", "ETHUSDT") is True
    assert gate.release("filled", "ETHUSDT") is False
    assert gate.release("", "ETHUSDT") is False and gate.release("x", "eth*") is False
    assert gate.check_portfolio_budget("ETHUSDT", "next", side="BUY", notional_usd=1000).reserved_usd == 0


def test_a_frozen_redis_costs_at_most_timeout_sec_plus_a_margin_even_with_a_client_without_socket_timeout(server, admin):
    admin.hset(KEY, mapping=budget_fields(**FLAT))
    governor_client = redis.Redis(port=server.port, decode_responses=True, socket_timeout=None, socket_connect_timeout=None)
    gate = BudgetGate(governor_client, timeout_sec=0.05, reservation_ttl_sec=1, reset_timeout_sec=0.2)
    gate.evaluate({"planId": "warm", "symbol": "ETHUSDT", "action": "OPEN", "side": "BUY", "notionalUsd": 1})
    gate.release("warm", "ETHUSDT")
    server.pause()
    try:
        worst = 0.0
        reasons = []
        for i in range(8):
            started = time.perf_counter()
            verdict = gate.check_portfolio_budget("ETHUSDT", "frozen-%d" % i, side="BUY", notional_usd=1000)
            worst = max(worst, time.perf_counter() - started)
            reasons.append(verdict.reason)
            assert not verdict and verdict.fail_open
        closing = gate.check_portfolio_budget("ETHUSDT", "close", action="CLOSE")
        assert not closing and closing.reason == "reduce_only"
    finally:
        server.resume()
    assert worst < 0.05 + 0.15
    assert reasons[0] == "timeout" and "breaker_open" in reasons
    assert gate.counters.get("decisions", "fail_open", "timeout") >= 1
    assert gate.counters.get("breaker", "open") == 1
    # What the frozen server ran after it woke up lapses with its TTL: nothing held past it.
    deadline = time.monotonic() + 4
    while True:
        decision = gate.evaluate({"planId": "probe", "symbol": "ETHUSDT", "action": "OPEN", "side": "BUY", "notionalUsd": 1300})
        if decision.reason == "within_budget" and decision.reserved_usd == 0:
            break
        gate.release("probe", "ETHUSDT")
        assert time.monotonic() < deadline, "a reservation outlived its TTL: %r" % decision
        time.sleep(0.1)


def test_logs_a_fail_open_once_per_change_of_cause_and_counts_every_one(server, admin, caplog):
    gate = BudgetGate(server.url)
    admin.set("quantum:p28:worker:heartbeat", "x")
    with caplog.at_level(logging.INFO, logger="p28_budget_gate"):
        for i in range(3):
            assert gate.check_portfolio_budget("ETHUSDT", "p%d" % i, side="BUY", notional_usd=10).reason == "no_budget_data"
        gate.evaluate({"planId": "bad", "symbol": "eth*", "action": "OPEN"})
    failing = [r for r in caplog.records if "failing open" in r.getMessage()]
    assert [r.getMessage().split(":")[1].split()[0] for r in failing] == ["no_budget_data", "invalid_request"]
    assert gate.counters.get("decisions", "fail_open", "no_budget_data") == 3


def test_a_wrong_key_prefix_is_loud_not_a_silent_allow(server, admin, caplog):
    admin.hset(KEY, mapping=budget_fields())
    admin.set("quantum:p28:worker:heartbeat", "x")
    gate = BudgetGate(server.url, key_prefix="quantom")
    with caplog.at_level(logging.ERROR, logger="p28_budget_gate"):
        verdict = gate.check_portfolio_budget("ETHUSDT", "p", side="BUY", qty=0.4)
    assert not verdict and verdict.fail_open and verdict.reason == "no_budget_data"
    assert any("no P2.8 worker writes under key prefix 'quantom'" in r.getMessage() for r in caplog.records)
    assert gate.counters.get("misconfigured", "no_worker_under_prefix") == 1
    right = BudgetGate(server.url)
    assert right.check_portfolio_budget("ETHUSDT", "p2", side="BUY", qty=0.4)
    assert right.counters.get("misconfigured", "no_worker_under_prefix") == 0


def test_exports_its_counters_to_prometheus_client_when_installed(server, admin):
    registry = prometheus_registry()
    admin.hset(KEY, mapping=budget_fields())
    gate = BudgetGate(server.url, registry=registry)
    second = BudgetGate(server.url, registry=registry)
    gate.check_portfolio_budget("ETHUSDT", "p", side="BUY", qty=0.4)
    second.check_portfolio_budget("ETHUSDT", "p", side="BUY", qty=0.4)
    assert registry.get_sample_value("p28_gate_decisions_total", {"decision": "block", "reason": "p28_budget_violation"}) == 2


def test_never_raises_and_rejects_unusable_options():
    with pytest.raises(ValueError, match="key_prefix.*timeout_sec"):
        BudgetGate("redis://127.0.0.1:1", key_prefix="a:b", timeout_sec=0)
    gate = BudgetGate("redis://127.0.0.1:1")
    assert gate.evaluate(object()).reason == "invalid_request"
    unreachable = gate.check_portfolio_budget("ETHUSDT", "p", side="BUY", qty=1)
    assert not unreachable and unreachable.reason == "redis_unavailable"
    assert Decision.from_json(unreachable.decision.as_dict()) == unreachable.decision
