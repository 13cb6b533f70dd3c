"""Decisions and requests: the contract's GateDecision and PermitRequest, in Python."""

import math
import re

__all__ = ["Decision", "Verdict", "CLOSE_ACTIONS", "FAIL_OPEN_REASONS", "read_request"]

# Actions that only ever close or shrink a position: allowed without asking Redis.
CLOSE_ACTIONS = frozenset(["FULL_CLOSE_PROPOSED", "PARTIAL_25", "PARTIAL_50", "PARTIAL_75", "CLOSE", "REDUCE"])

FAIL_OPEN_REASONS = frozenset(
    ["no_budget_data", "stale_budget_data", "invalid_budget_data", "invalid_request", "redis_unavailable", "timeout", "breaker_open"]
)

SYMBOL_PATTERN = re.compile(r"[A-Z0-9]{1,32}\Z")
PLAN_ID_MAX = 200
ACTION_MAX = 64

_OPTIONAL = (
    ("detail", "detail"),
    ("budget_usd", "budgetUsd"),
    ("position_notional_usd", "positionNotionalUsd"),
    ("projected_notional_usd", "projectedNotionalUsd"),
    ("reserved_usd", "reservedUsd"),
    ("source", "source"),
)


class Decision:
    """The gate's decision for one plan: the contract's GateDecision, attributes in snake_case.

    ``as_dict()`` gives the JSON names (``failOpen``, ``budgetUsd``, ...), the same object the
    Node gate and ``POST /v1/decisions`` return for the same hash, request and time.
    """

    __slots__ = (
        "allow", "reason", "enforced", "fail_open", "would_block", "mode",
        "detail", "budget_usd", "position_notional_usd", "projected_notional_usd", "reserved_usd", "source",
    )

    def __init__(self, allow, reason, enforced=False, fail_open=False, would_block=False, mode=None, detail=None,
                 budget_usd=None, position_notional_usd=None, projected_notional_usd=None, reserved_usd=None, source=None):
        self.allow = allow
        self.reason = reason
        self.enforced = enforced
        self.fail_open = fail_open
        self.would_block = would_block
        self.mode = mode
        self.detail = detail
        self.budget_usd = budget_usd
        self.position_notional_usd = position_notional_usd
        self.projected_notional_usd = projected_notional_usd
        self.reserved_usd = reserved_usd
        self.source = source

    def copy(self):
        """A Decision with the same values: what the decision log keeps, whatever the caller does with this one."""
        return Decision(self.allow, self.reason, self.enforced, self.fail_open, self.would_block, self.mode, self.detail,
                        self.budget_usd, self.position_notional_usd, self.projected_notional_usd, self.reserved_usd, self.source)

    @classmethod
    def fail_open_for(cls, reason, detail=None, mode=None):
        return cls(True, reason, fail_open=True, mode=mode, detail=detail, source="none")

    @classmethod
    def from_json(cls, body):
        """A Decision from the JSON of ``POST /v1/decisions``."""
        decision = cls(
            bool(body.get("allow")), str(body.get("reason")), bool(body.get("enforced")), bool(body.get("failOpen")),
            bool(body.get("wouldBlock")), body.get("mode"),
        )
        for attribute, name in _OPTIONAL:
            if body.get(name) is not None:
                setattr(decision, attribute, body[name])
        return decision

    def as_dict(self):
        out = {
            "allow": self.allow,
            "reason": self.reason,
            "enforced": self.enforced,
            "failOpen": self.fail_open,
            "wouldBlock": self.would_block,
            "mode": self.mode,
        }
        for attribute, name in _OPTIONAL:
            value = getattr(self, attribute)
            if value is not None:
                out[name] = value
        return out

    def __eq__(self, other):
        return isinstance(other, Decision) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return "Decision(%r)" % (self.as_dict(),)


class Verdict:
    """What ``check_portfolio_budget`` returns: truthy when the plan must be blocked.

    A drop-in for the bool the Governor's old check returned (``if budget_violation:``), with the
    reason and the full decision beside it. ``reason`` is the gate's reason or, for the HTTP
    client when the worker could not be asked, ``client_timeout``, ``client_unreachable``,
    ``client_http_<status>`` or ``client_bad_response``.
    """

    __slots__ = ("block", "reason", "fail_open", "decision", "elapsed_sec")

    def __init__(self, block, reason, fail_open, decision=None, elapsed_sec=0.0):
        self.block = block
        self.reason = reason
        self.fail_open = fail_open
        self.decision = decision
        self.elapsed_sec = elapsed_sec

    @classmethod
    def of(cls, decision, elapsed_sec=0.0):
        return cls(not decision.allow, decision.reason, decision.fail_open, decision, elapsed_sec)

    def __bool__(self):
        return self.block

    def __getattr__(self, name):
        # The decision's own attributes (detail, budget_usd, reserved_usd, ...) read through the verdict.
        decision = object.__getattribute__(self, "decision")
        if decision is not None and name in Decision.__slots__:
            return getattr(decision, name)
        raise AttributeError(name)

    def __repr__(self):
        return "Verdict(block=%r, reason=%r, fail_open=%r)" % (self.block, self.reason, self.fail_open)

    def as_dict(self):
        return {
            "block": self.block,
            "reason": self.reason,
            "fail_open": self.fail_open,
            "decision": None if self.decision is None else self.decision.as_dict(),
            "elapsed_sec": self.elapsed_sec,
        }


def _is_text(value, longest):
    return isinstance(value, str) and 1 <= len(value) <= longest


def _is_size(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isfinite(number) and number > 0


def normalize_symbol(raw):
    """``raw`` upper-cased when that makes a valid symbol (``btcusdt`` is ``BTCUSDT``), else None."""
    if not isinstance(raw, str):
        return None
    if SYMBOL_PATTERN.match(raw):
        return raw
    if len(raw) > 32:
        return None
    upper = raw.upper()
    return upper if SYMBOL_PATTERN.match(upper) else None


def read_request(request):
    """``(plan, None)`` for a valid PermitRequest dict, else ``(None, detail)``.

    The same checks, in the same order, as the Node gate's: ``detail`` names every field that
    fails (``planId,side``), or ``(request)`` when the request is not an object at all.
    """
    if not isinstance(request, dict):
        return None, "(request)"
    failed = []
    plan = {}
    plan_id = request.get("planId")
    if _is_text(plan_id, PLAN_ID_MAX):
        plan["planId"] = plan_id
    else:
        failed.append("planId")
    symbol = normalize_symbol(request.get("symbol"))
    if symbol is not None:
        plan["symbol"] = symbol
    else:
        failed.append("symbol")
    action = request.get("action")
    if _is_text(action, ACTION_MAX):
        plan["action"] = action
    else:
        failed.append("action")
    if "side" in request:
        if request["side"] in ("BUY", "SELL"):
            plan["side"] = request["side"]
        else:
            failed.append("side")
    for name in ("qty", "notionalUsd"):
        if name in request:
            if _is_size(request[name]):
                plan[name] = request[name]
            else:
                failed.append(name)
    if "reduceOnly" in request:
        if isinstance(request["reduceOnly"], bool):
            plan["reduceOnly"] = request["reduceOnly"]
        else:
            failed.append("reduceOnly")
    if failed:
        return None, ",".join(failed)
    return plan, None


def is_closing(plan):
    """Whether the request alone says it closes or reduces: answered without Redis, never blocked."""
    return plan.get("reduceOnly") is True or plan["action"] in CLOSE_ACTIONS
