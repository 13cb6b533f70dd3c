"""A private redis-server on a free port for the suite, and the shared conformance vectors.

Nothing here touches a Redis the suite did not start. Under CI (``CI=true``) a missing
redis-server or vectors file fails the suite instead of skipping it.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[3]
VECTORS_FILE = REPO / "test" / "conformance" / "vectors.json"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message):
    if IN_CI:
        pytest.fail(message + " (required in CI)")
    pytest.skip(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, binary):
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = "redis://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start on port %d" % self.port)
                time.sleep(0.05)

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        self.resume()
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("REDIS_SERVER_BIN", "redis-server")
    if shutil.which(binary) is None:
        unavailable("redis-server is not installed")
    started = RedisServer(binary)
    yield started
    started.stop()


@pytest.fixture
def admin(server):
    client = redis.Redis(port=server.port, decode_responses=True, socket_timeout=5)
    client.flushall()
    yield client
    server.resume()
    client.close()


def load_vectors():
    if not VECTORS_FILE.exists():
        return None
    return json.loads(VECTORS_FILE.read_text())


def seed_vector(client, vector, symbol="ETHUSDT"):
    """Writes a vector's hash and its reservations (expiry on the Redis clock), as the mocha suite does."""
    key = "quantum:portfolio:budget:%s" % symbol
    if vector["hash"] == "wrong_type":
        client.set(key, "not a hash")
        return
    if vector["hash"] is None:
        return
    client.hset(key, mapping=vector["hash"])
    if vector.get("reservations"):
        sec, usec = client.time()
        now_ms = int(sec) * 1000 + int(usec) // 1000
        stored = {r["planId"]: [str(r["amountUsd"]), now_ms + r["ttlMs"]] for r in vector["reservations"]}
        client.hset(key, "reservations", json.dumps(stored))


def reserved_plans(client, symbol="ETHUSDT"):
    key = "quantum:portfolio:budget:%s" % symbol
    if client.type(key) != "hash":
        return []
    stored = client.hget(key, "reservations")
    if stored is None:
        return []
    now_ms = int(client.time()[0]) * 1000
    return sorted(plan for plan, (_, expires) in json.loads(stored).items() if expires > now_ms)


def budget_fields(**overrides):
    """The guide's ETHUSDT hash: budget 1348, long 1 @ 1000, fresh, enforce."""
    fields = {
        "symbol": "ETHUSDT", "budget_usd": "1348", "stress_factor": "0.326", "equity_usd": "100000", "portfolio_heat": "0.65",
        "cluster_stress": "0", "vol_regime": "0.33", "mode": "enforce", "timestamp": str(int(time.time())), "base_risk_pct": "0.02",
        "position_amt": "1", "position_notional_usd": "1000", "over_budget_usd": "0", "position_price": "1000", "position_status": "ok",
    }
    for name, value in overrides.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields
