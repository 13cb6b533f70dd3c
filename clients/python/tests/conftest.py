"""A private redis-server on a free port for the suite, a private Redis Cluster and Sentinel
deployment for the tests that ask for them, and the shared conformance vectors.

Nothing here touches a Redis the suite did not start. Under CI (``CI=true``) a missing
redis-server or vectors file fails the suite instead of skipping it.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
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


def prometheus_registry():
    """A new prometheus_client registry (prometheus_client is installed under CI; elsewhere the test skips without it)."""
    try:
        import prometheus_client
    except ImportError:
        unavailable("prometheus_client is not installed")
    return prometheus_client.CollectorRegistry()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port():
    """A free port whose cluster bus port (port + 10000) is a port, and free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def wait_for(check, what, timeout_sec=20):
    deadline = time.monotonic() + timeout_sec
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.05)


class RedisServer:
    """One redis-server on a free loopback port, nothing kept on disk: ``args`` are more options,
    ``config_file`` a config file to start from (a Sentinel's, with ``sentinel=True``)."""

    def __init__(self, binary, *args, config_file=None, sentinel=False, port=None):
        self.port = port or free_port()
        command = [binary] + ([str(config_file)] if config_file else []) + ["--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--sentinel"] if sentinel else ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = "redis://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start on port %d" % self.port)
                time.sleep(0.05)

    def client(self, **options):
        return redis.Redis(port=self.port, socket_timeout=5, **options)

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(10)


def redis_server_binary():
    binary = os.environ.get("REDIS_SERVER_BIN", "redis-server")
    if shutil.which(binary) is None:
        unavailable("redis-server is not installed")
    return binary


@pytest.fixture(scope="session")
def server():
    started = RedisServer(redis_server_binary())
    yield started
    started.stop()


class Deployment:
    """Servers started together in a temp dir of their own, all stopped and the dir removed at the end."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="p28-py-")
        self.servers = []

    def start(self, binary, *args, **options):
        started = RedisServer(binary, *args, **options)
        self.servers.append(started)
        return started

    def stop(self):
        for started in self.servers:
            started.stop()
        self.dir.cleanup()


@pytest.fixture(scope="module")
def cluster():
    """A private Redis Cluster: three masters on free ports, the slots split evenly, no replicas.
    Yields the nodes (RedisServer); the first one's port is a seed for ``RedisCluster``."""
    binary = redis_server_binary()
    deployment = Deployment()
    try:
        nodes = [
            deployment.start(
                binary, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-%d.conf" % i, "--dir", deployment.dir.name,
                port=free_cluster_port(),
            )
            for i in range(3)
        ]
        admins = [node.client(decode_responses=True) for node in nodes]
        share = 16384 // len(nodes) + 1
        for i, admin_client in enumerate(admins):
            admin_client.execute_command("CLUSTER", "ADDSLOTS", *range(i * share, min(16384, (i + 1) * share)))
        for node in nodes[1:]:
            admins[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        for admin_client in admins:
            wait_for(lambda: "cluster_state:ok" in admin_client.execute_command("CLUSTER", "INFO"), "cluster_state:ok")
            wait_for(lambda: len(admin_client.execute_command("CLUSTER", "SLOTS")) == len(nodes), "every node to know every slot")
            admin_client.close()
        yield nodes
    finally:
        deployment.stop()


SENTINEL_MASTER = "mymaster"


@pytest.fixture(scope="module")
def sentinel_set():
    """A private Sentinel deployment: a master, one replica and one ``redis-server --sentinel``
    watching them. Yields ``(master, replica, sentinel)`` (RedisServer each)."""
    binary = redis_server_binary()
    deployment = Deployment()
    try:
        # A replica writes the master's snapshot to its dir: the temp dir, not the working dir.
        master = deployment.start(binary, "--dir", deployment.dir.name, "--dbfilename", "master.rdb")
        replica = deployment.start(
            binary, "--replicaof", "127.0.0.1", str(master.port), "--dir", deployment.dir.name, "--dbfilename", "replica.rdb",
        )
        replica_client = replica.client(decode_responses=True)
        wait_for(lambda: replica_client.info("replication").get("master_link_status") == "up", "the replica to sync")
        replica_client.close()
        config = os.path.join(deployment.dir.name, "sentinel.conf")
        with open(config, "w") as out:
            out.write(
                "dir %s\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 3000\n"
                % (deployment.dir.name, SENTINEL_MASTER, master.port, SENTINEL_MASTER, SENTINEL_MASTER)
            )
        sentinel = deployment.start(binary, config_file=config, sentinel=True)
        sentinel_client = sentinel.client(decode_responses=True)


        def replica_ready():
            # Connected and synced as the Sentinel sees it: a replica it can promote.
            return any(
                not seen.get("is_disconnected") and seen.get("master-link-status") == "ok"
                for seen in sentinel_client.sentinel_slaves(SENTINEL_MASTER)
            )

        wait_for(replica_ready, "the Sentinel to see the replica in sync")
        sentinel_client.close()
        yield master, replica, sentinel
    finally:
        deployment.stop()


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
