"""The shared conformance vectors (test/conformance/vectors.json) through the Python gate."""

import pytest

from p28_budget_gate import BudgetGate

from conftest import free_port, load_vectors, reserved_plans, seed_vector, unavailable

VECTORS = load_vectors()


def test_the_vectors_file_is_there():
    if VECTORS is None:
        unavailable("test/conformance/vectors.json not found (the suite runs from the repository)")
    assert len(VECTORS) > 50


def gate_for(vector, server):
    options = vector.get("options", {})
    kwargs = {
        "now": lambda: vector["now"] / 1000,
        "force_shadow": options.get("forceShadow", False),
        "disabled": options.get("disabled", False),
    }
    if "reservationTtlMs" in options:
        kwargs["reservation_ttl_sec"] = options["reservationTtlMs"] / 1000
    if vector.get("fault") == "unreachable":
        return BudgetGate("redis://127.0.0.1:%d" % free_port(), **kwargs)
    if vector.get("fault"):
        return BudgetGate(server.url, timeout_sec=0.05, consecutive_failures_to_open=1, failure_streak_sec=0, **kwargs)
    return BudgetGate(server.url, timeout_sec=1, **kwargs)


@pytest.mark.parametrize("vector", VECTORS or [], ids=lambda v: v["name"])
def test_vector(vector, server, admin):
    seed_vector(admin, vector)
    gate = gate_for(vector, server)
    frozen = vector.get("fault") in ("frozen", "breaker_open")
    if frozen:
        server.pause()
    try:
        if vector.get("fault") == "breaker_open":
            for _ in range(10):
                if gate.breaker.state == "open":
                    break
                gate.evaluate(vector["request"])
        decision = gate.evaluate(vector["request"]).as_dict()
    finally:
        if frozen:
            server.resume()
        gate.close()
    if vector.get("fault"):
        decision.pop("detail", None)
    assert decision == vector["expect"]
    if "reservedAfter" in vector:
        assert reserved_plans(admin) == vector["reservedAfter"]
