"""P2.8 budget decisions over the worker's HTTP API (``POST /v1/decisions``), with keep-alive.

For a Governor that cannot reach Redis itself; the in-process ``BudgetGate`` is faster and does
not depend on the worker's HTTP server being up. Standard library only.

    client = P28BudgetClient("http://127.0.0.1:8049", token=os.getenv("P28_API_TOKEN"))
    verdict = client.check_portfolio_budget(symbol, plan_id, action=action, side=side, qty=qty, notional_usd=notional)
    if verdict:
        self._block_plan(plan_id, symbol, verdict.reason)

It never raises and never waits much longer than its timeout: any error (worker stopped, slow,
answering garbage) is a fail-open allow whose reason says what went wrong. A 401 (wrong or missing
token) or a 404 (wrong URL) is a misconfiguration, not an outage: it is logged as an error once per
change and counted in ``counters`` (``misconfigured{http_401}``), never a quiet allow.
"""

import http.client
import json
import logging
import math
import socket
import threading
import time
from urllib.parse import urlsplit

from .counters import GateCounters
from .decision import PLAN_ID_MAX, Decision, Verdict

__all__ = ["P28BudgetClient", "DEFAULT_TIMEOUT_SEC", "main"]

LOG = logging.getLogger("p28_budget_gate.http")

# A decision is one Redis call behind the worker; a quarter second is generous on loopback and
# still short enough that a stalled worker costs a plan little before it fails open.
DEFAULT_TIMEOUT_SEC = 0.25
MAX_BODY_BYTES = 65536
# Errors of a kept-alive connection the server closed meanwhile: the request is sent again once,
# on a new connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest, http.client.BadStatusLine)


def _positive(value):
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number > 0 else None


class P28BudgetClient:
    """Asks the P2.8 worker for budget decisions, over one kept-alive connection per thread.

    ``base_url`` is the worker's address (``http://127.0.0.1:8049``), ``token`` the value of
    ``P28_API_TOKEN`` when the worker has one, ``timeout_sec`` the longest a decision may wait for
    each step (connect, send, answer) before it fails open.
    """

    def __init__(self, base_url="http://127.0.0.1:8049", token=None, timeout_sec=DEFAULT_TIMEOUT_SEC, registry=None, logger=None):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._timeout_sec = float(timeout_sec)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", "Connection": "keep-alive"}
        if token:
            self._headers["Authorization"] = "Bearer " + token
        self._local = threading.local()
        self._log = logger or LOG
        self._last_misconfigured = None
        self.counters = GateCounters(registry, prometheus=registry is not None)

    def check_portfolio_budget(self, symbol, plan_id, action="OPEN", side=None, qty=None, reduce_only=False, notional_usd=None):
        """The Verdict for one plan; truthy when it must be blocked. Never raises."""
        request = {"planId": str(plan_id)[:PLAN_ID_MAX], "symbol": str(symbol), "action": str(action or "OPEN")[:64]}
        side = str(side or "").strip().upper()
        if side in ("BUY", "SELL"):
            request["side"] = side
        if _positive(qty) is not None:
            request["qty"] = _positive(qty)
        if _positive(notional_usd) is not None:
            request["notionalUsd"] = _positive(notional_usd)
        if reduce_only is True or str(reduce_only).lower() == "true":
            request["reduceOnly"] = True
        return self.evaluate(request)

    def check_plan(self, plan_id, data):
        """The Verdict for a plan as the Governor reads it from the stream (``symbol``, ``action``,
        ``side``, ``qty``, ``reduceOnly``, and ``notionalUsd`` or ``notional_usd``)."""
        return self.check_portfolio_budget(
            data.get("symbol", "UNKNOWN"), plan_id, action=data.get("action"), side=data.get("side"), qty=data.get("qty"),
            reduce_only=data.get("reduceOnly", False), notional_usd=data.get("notionalUsd", data.get("notional_usd")),
        )

    def evaluate(self, request):
        """The Verdict for a PermitRequest dict, as ``POST /v1/decisions`` decides it. Never raises."""
        started = time.perf_counter()

        def fail_open(reason):
            return Verdict(False, reason, True, None, time.perf_counter() - started)

        try:
            status, payload = self._call("POST", "/v1/decisions", json.dumps(request).encode("utf-8"))
        except (socket.timeout, TimeoutError):
            return fail_open("client_timeout")
        except (OSError, http.client.HTTPException):
            return fail_open("client_unreachable")
        except Exception:  # noqa: BLE001 - a permit check must never raise into the Governor
            return fail_open("client_bad_response")
        if status != 200:
            self._refused(status)
            return fail_open("client_http_%d" % status)
        try:
            body = json.loads(payload.decode("utf-8"))
        except ValueError:
            return fail_open("client_bad_response")
        if not isinstance(body, dict) or not isinstance(body.get("allow"), bool) or not isinstance(body.get("reason"), str):
            return fail_open("client_bad_response")
        self._last_misconfigured = None
        return Verdict.of(Decision.from_json(body), time.perf_counter() - started)

    def release(self, plan_id, symbol):
        """``DELETE /v1/reservations/{symbol}/{planId}``: True when a reservation was freed. Never raises."""
        from urllib.parse import quote

        try:
            status, payload = self._call("DELETE", "/v1/reservations/%s/%s" % (quote(str(symbol), safe=""), quote(str(plan_id), safe="")), None)
            if status != 200:
                self._refused(status)
                return False
            return json.loads(payload.decode("utf-8")).get("released") is True
        except Exception:  # noqa: BLE001
            return False

    def close(self):
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _refused(self, status):
        if status not in (401, 403, 404):
            return
        cause = "http_%d" % status
        self.counters.misconfigured(cause)
        if self._last_misconfigured != cause:
            self._log.error(
                "P2.8 worker answered %d to a budget decision: %s; every plan fails open until this is fixed",
                status, "check the token (P28_API_TOKEN)" if status in (401, 403) else "check the worker URL",
            )
            self._last_misconfigured = cause

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=self._timeout_sec)
            self._local.connection = connection
            self._local.used = False
        return connection

    def _call(self, method, path, body):
        for attempt in (0, 1):
            connection = self._connection()
            reused = self._local.used
            try:
                headers = self._headers if body is not None else {k: v for k, v in self._headers.items() if k != "Content-Type"}
                connection.request(method, self._base + path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read(MAX_BODY_BYTES + 1)
                self._local.used = True
                if len(payload) > MAX_BODY_BYTES or response.will_close:
                    self.close()
                return response.status, payload
            except _STALE:
                self.close()
                if attempt == 1 or not reused:
                    raise
            except BaseException:
                self.close()
                raise
        raise http.client.HTTPException("unreachable")


def main(argv=None):
    """``p28-budget-check SYMBOL --side BUY --qty 0.01 --notional 1000``: one decision, as JSON."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Ask the P2.8 worker for one budget decision.")
    parser.add_argument("symbol")
    parser.add_argument("--plan-id", default="cli-check")
    parser.add_argument("--action", default="OPEN")
    parser.add_argument("--side")
    parser.add_argument("--qty")
    parser.add_argument("--notional", help="the plan's notional in USD: how an opening plan is sized")
    parser.add_argument("--reduce-only", action="store_true")
    parser.add_argument("--url", default=os.getenv("P28_URL", "http://127.0.0.1:8049"))
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SEC)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    client = P28BudgetClient(args.url, token=os.getenv("P28_API_TOKEN"), timeout_sec=args.timeout)
    verdict = client.check_portfolio_budget(
        args.symbol, args.plan_id, args.action, args.side, args.qty, args.reduce_only, notional_usd=args.notional,
    )
    out = verdict.as_dict()
    out["misconfigured"] = client.counters.snapshot()
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
