"""P2.8 budget decisions for a Python Governor, over the worker's HTTP API.

Standard library only. A drop-in replacement for the Governor's
``_check_portfolio_budget(symbol, plan_id)``: it asks ``POST /v1/decisions``
(the same BudgetGate the Node plugin runs) with the plan's action, side and
quantity, and returns a verdict that is truthy when the plan must be blocked,
so existing ``if budget_violation:`` call sites keep working.

It never raises and never waits much longer than its timeout: any error
(worker stopped, slow, answering garbage) is a fail-open allow whose reason
says what went wrong, as the gate itself does when it cannot judge.

    client = P28BudgetClient("http://127.0.0.1:8049", token=os.getenv("P28_API_TOKEN"))
    verdict = client.check_portfolio_budget(symbol, plan_id, action=action, side=side, qty=qty)
    if verdict:
        self._block_plan(plan_id, symbol, verdict.reason)
"""

import json
import socket
import time
import urllib.error
import urllib.request

__all__ = ["P28BudgetClient", "BudgetVerdict", "DEFAULT_TIMEOUT_SEC"]

# A decision is one Redis read behind the worker; a quarter second is generous on loopback and
# still short enough that a stalled worker costs a plan little before it fails open.
DEFAULT_TIMEOUT_SEC = 0.25

# Actions the Governor uses for closes: judged by the gate as reducing, never blocked.
CLOSE_ACTIONS = frozenset(["FULL_CLOSE_PROPOSED", "PARTIAL_25", "PARTIAL_50", "PARTIAL_75", "CLOSE", "REDUCE"])


class BudgetVerdict:
    """The gate's answer for one plan.

    Truthy when the plan must be blocked (``block``), like the bool the old
    check returned. ``reason`` is the gate's reason (``p28_budget_violation``,
    ``within_budget``, ``reduce_only``, ``shadow_would_block``, a fail-open
    reason such as ``no_budget_data``) or, when the worker could not be asked,
    ``client_timeout``, ``client_unreachable``, ``client_http_<status>`` or
    ``client_bad_response``. ``decision`` is the full GateDecision, or None.
    """

    __slots__ = ("block", "reason", "fail_open", "decision", "elapsed_sec")

    def __init__(self, block, reason, fail_open, decision=None, elapsed_sec=0.0):
        self.block = block
        self.reason = reason
        self.fail_open = fail_open
        self.decision = decision
        self.elapsed_sec = elapsed_sec

    def __bool__(self):
        return self.block

    def __repr__(self):
        return "BudgetVerdict(block=%r, reason=%r, fail_open=%r)" % (self.block, self.reason, self.fail_open)

    def as_dict(self):
        return {
            "block": self.block,
            "reason": self.reason,
            "fail_open": self.fail_open,
            "decision": self.decision,
            "elapsed_sec": self.elapsed_sec,
        }


def _side(value):
    side = str(value or "").strip().upper()
    return side if side in ("BUY", "SELL") else None


def _positive_number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number != float("inf") else None


class P28BudgetClient:
    """Asks the P2.8 worker for budget decisions.

    ``base_url`` is the worker's address (``http://127.0.0.1:8049``), ``token``
    the value of ``P28_API_TOKEN`` when the worker has one, ``timeout_sec`` the
    longest a decision may take before it fails open.
    """

    def __init__(self, base_url="http://127.0.0.1:8049", token=None, timeout_sec=DEFAULT_TIMEOUT_SEC):
        self._url = base_url.rstrip("/") + "/v1/decisions"
        self._timeout_sec = float(timeout_sec)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = "Bearer " + token
        # No proxies: the worker is on the host or the private network, and an environment
        # proxy would add a hop the timeout was not sized for.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def check_portfolio_budget(self, symbol, plan_id, action="UNKNOWN", side=None, qty=None, reduce_only=False, notional_usd=None):
        """The verdict for one plan; truthy when it must be blocked. Never raises."""
        started = time.monotonic()
        request = {"planId": str(plan_id)[:200], "symbol": str(symbol), "action": str(action or "UNKNOWN")[:64]}
        if _side(side):
            request["side"] = _side(side)
        if _positive_number(qty) is not None:
            request["qty"] = _positive_number(qty)
        if _positive_number(notional_usd) is not None:
            request["notionalUsd"] = _positive_number(notional_usd)
        if reduce_only is True or str(reduce_only).lower() == "true":
            request["reduceOnly"] = True

        def fail_open(reason):
            return BudgetVerdict(False, reason, True, None, time.monotonic() - started)

        try:
            body = json.dumps(request).encode("utf-8")
            req = urllib.request.Request(self._url, data=body, headers=self._headers, method="POST")
            with self._opener.open(req, timeout=self._timeout_sec) as response:
                payload = response.read(65536)
            decision = json.loads(payload.decode("utf-8"))
        except urllib.error.HTTPError as error:
            return fail_open("client_http_%d" % error.code)
        except (socket.timeout, TimeoutError):
            return fail_open("client_timeout")
        except urllib.error.URLError as error:
            timed_out = isinstance(error.reason, (socket.timeout, TimeoutError))
            return fail_open("client_timeout" if timed_out else "client_unreachable")
        except (ValueError, OSError):
            return fail_open("client_bad_response")
        except Exception:  # noqa: BLE001 - a permit check must never raise into the Governor
            return fail_open("client_bad_response")

        if not isinstance(decision, dict) or not isinstance(decision.get("allow"), bool) or not isinstance(decision.get("reason"), str):
            return fail_open("client_bad_response")
        return BudgetVerdict(
            not decision["allow"],
            decision["reason"],
            bool(decision.get("failOpen")),
            decision,
            time.monotonic() - started,
        )

    def check_plan(self, plan_id, data):
        """The verdict for a plan as the Governor reads it from the stream (``symbol``, ``action``, ``side``, ``qty``, ``reduceOnly``, and ``notionalUsd`` or ``notional_usd`` when it has one)."""
        return self.check_portfolio_budget(
            data.get("symbol", "UNKNOWN"),
            plan_id,
            action=data.get("action"),
            side=data.get("side"),
            qty=data.get("qty"),
            reduce_only=data.get("reduceOnly", False),
            notional_usd=data.get("notionalUsd", data.get("notional_usd")),
        )


if __name__ == "__main__":
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Ask the P2.8 worker for one budget decision.")
    parser.add_argument("symbol")
    parser.add_argument("--plan-id", default="cli-check")
    parser.add_argument("--action", default="OPEN")
    parser.add_argument("--side")
    parser.add_argument("--qty")
    parser.add_argument("--reduce-only", action="store_true")
    parser.add_argument("--url", default=os.getenv("P28_URL", "http://127.0.0.1:8049"))
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SEC)
    args = parser.parse_args()
    client = P28BudgetClient(args.url, token=os.getenv("P28_API_TOKEN"), timeout_sec=args.timeout)
    verdict = client.check_portfolio_budget(args.symbol, args.plan_id, args.action, args.side, args.qty, args.reduce_only)
    print(json.dumps(verdict.as_dict(), sort_keys=True))
