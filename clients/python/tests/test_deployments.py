"""The Python gate on a real Redis Cluster and a real Sentinel deployment, with the clients a
Governor would pass in: ``redis.cluster.RedisCluster`` and ``Sentinel(...).master_for(...)``."""

import logging
import time

import pytest
import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from p28_budget_gate import BudgetGate

from conftest import SENTINEL_MASTER, budget_fields, wait_for

# The gate's timeout in the tests of routing, reservations and failover: the clients' own (which
# bounded the gate's calls when it used them as they were), so that a loaded machine does not
# turn a decision into a fail-open. The timeout has tests of its own (TIMEOUT_SEC below).
ROUTING_TIMEOUT_SEC = 2
# Symbols whose budget hashes fall in the slots of different nodes of a three-master cluster.
SYMBOLS = ("ETHUSDT", "BTCUSDT", "SOLUSDT", "XRPUSDT")
FLAT = {"position_amt": "0", "position_notional_usd": "0"}


def seed(client, symbol):
    client.delete("quantum:portfolio:budget:%s" % symbol)
    client.hset("quantum:portfolio:budget:%s" % symbol, mapping=budget_fields(symbol=symbol, **FLAT))


def exercise(gate, client, run):
    """Decisions, reservations, release and the decision log, on every symbol; ``run`` names the
    plans of this round so that rounds do not see each other's reservations."""
    for symbol in SYMBOLS:
        seed(client, symbol)
        within = gate.check_portfolio_budget(symbol, "%s-a" % run, side="BUY", notional_usd=1000)
        assert not within and within.reason == "within_budget" and within.decision.source == "redis", (symbol, within)
        over = gate.check_portfolio_budget(symbol, "%s-b" % run, side="BUY", notional_usd=1000)
        assert over and over.reason == "p28_budget_violation" and over.reserved_usd == 1000, (symbol, over)
        assert gate.evaluate({"planId": "%s-c" % run, "symbol": symbol, "action": "CLOSE"}).reason == "reduce_only"
        assert gate.release("%s-a" % run, symbol) is True
        assert gate.release("%s-a" % run, symbol) is False
        assert not gate.check_portfolio_budget(symbol, "%s-b" % run, side="BUY", notional_usd=1000)
    assert gate.evaluate({"planId": "%s-none" % run, "symbol": "NOHASHUSDT", "action": "OPEN", "notionalUsd": 1}).reason == "no_budget_data"


def log_entries(client):
    return [fields for _, fields in client.xrange("quantum:stream:p28.decisions")]


def slot_owners(nodes):
    """Which node owns each symbol's budget hash: the symbols must spread over more than one."""
    owners = set()
    for symbol in SYMBOLS:
        slot = nodes[0].client().execute_command("CLUSTER", "KEYSLOT", "quantum:portfolio:budget:%s" % symbol)
        for start, end, *_ in nodes[0].client().execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                owners.add((start, end))
    return owners


@pytest.mark.parametrize("decode", [True, False])
def test_decides_reserves_releases_and_logs_on_redis_cluster(cluster, decode):
    assert len(slot_owners(cluster)) > 1
    client = RedisCluster(host="127.0.0.1", port=cluster[0].port, decode_responses=decode, socket_timeout=2)
    gate = BudgetGate(client, timeout_sec=ROUTING_TIMEOUT_SEC, instance_id="cluster-gate")
    try:
        exercise(gate, client, "r1-%s" % decode)
        # The decision scripts gone from every node (a restart, SCRIPT FLUSH): loaded again on use.
        for node in cluster:
            node.client().script_flush()
        exercise(gate, client, "r2-%s" % decode)
        gate.close(5)
        assert gate.counters.get("decision_log_written") >= 2 * (4 * len(SYMBOLS) + 1)
        entries = log_entries(client)
        assert len(entries) == gate.counters.get("decision_log_written")
        packed = [(fields.get("d") or fields.get(b"d")) for fields in entries]
        assert all((p.decode() if isinstance(p, bytes) else p).split("|")[18] == "python" for p in packed)
    finally:
        gate.close(0)
        client.delete("quantum:stream:p28.decisions")
        client.close()


def test_decides_with_a_cluster_client_made_from_a_url(cluster):
    client = RedisCluster.from_url("redis://127.0.0.1:%d/0?socket_timeout=2" % cluster[1].port, decode_responses=True)
    gate = BudgetGate(client, timeout_sec=ROUTING_TIMEOUT_SEC, decision_log_max_len=0)
    try:
        exercise(gate, client, "url")
    finally:
        gate.close(0)
        client.close()


@pytest.mark.parametrize("decode", [True, False])
def test_decides_reserves_releases_and_logs_through_a_sentinel_provided_master(sentinel_set, decode):
    master, _, sentinel_server = sentinel_set
    sentinel = Sentinel([("127.0.0.1", sentinel_server.port)], socket_timeout=2)
    client = sentinel.master_for(SENTINEL_MASTER, socket_timeout=2, decode_responses=decode)
    gate = BudgetGate(client, timeout_sec=ROUTING_TIMEOUT_SEC, instance_id="sentinel-gate")
    try:
        exercise(gate, client, "r1-%s" % decode)
        master.client().script_flush()
        exercise(gate, client, "r2-%s" % decode)
        gate.close(5)
        assert len(log_entries(client)) == gate.counters.get("decision_log_written") >= 2 * (4 * len(SYMBOLS) + 1)
    finally:
        gate.close(0)
        client.delete("quantum:stream:p28.decisions")
        client.close()


# The hanging-Redis tests: the gate's timeout, and a password the Governor's client logs in with
# (which nothing the gate logs or answers may show).
TIMEOUT_SEC = 0.1
MARGIN_SEC = 0.5
GATE_USER, GATE_PASSWORD = "p28gate", "gate-pw-5d1c9e"
ALL_LOGGERS = logging.getLogger()


class GateUser:
    """On each server: a user for the Governor's client, and the default user without scripts
    for the test's length, so that a decision answered from Redis proves that the gate's own
    connections log in as the Governor's client does."""

    def __init__(self, servers):
        self.admins = [server.client(decode_responses=True) for server in servers]

    def __enter__(self):
        for admin_client in self.admins:
            admin_client.execute_command("ACL", "SETUSER", GATE_USER, "on", ">" + GATE_PASSWORD, "~*", "&*", "+@all")
            admin_client.execute_command("ACL", "SETUSER", "default", "-@scripting")
        return self

    def __exit__(self, *exc):
        for admin_client in self.admins:
            admin_client.execute_command("ACL", "SETUSER", "default", "+@all")
            admin_client.execute_command("ACL", "DELUSER", GATE_USER)
            admin_client.close()


def freeze_then_recover(gate, seed_client, frozen, symbol, other_symbol=None):
    """A decision while ``frozen`` (the server holding ``symbol``'s hash) is stopped fails open
    with ``timeout`` within the gate's timeout plus a margin; after it resumes, decisions are
    answered from Redis again within a bound. ``other_symbol``'s hash, on a server still up,
    is read meanwhile. Returns every decision's detail."""
    for name in filter(None, (symbol, other_symbol)):
        seed(seed_client, name)
    warm = gate.check_portfolio_budget(symbol, "warm", side="BUY", notional_usd=1)
    assert warm.reason == "within_budget", warm
    gate.release("warm", symbol)
    details = [warm.detail]
    frozen.pause()
    try:
        started = time.perf_counter()
        verdict = gate.check_portfolio_budget(symbol, "frozen", side="BUY", notional_usd=1)
        took = time.perf_counter() - started
        if other_symbol is not None:
            other = gate.check_portfolio_budget(other_symbol, "other", side="BUY", notional_usd=1)
            details.append(other.detail)
            assert other.reason == "within_budget", other
    finally:
        frozen.resume()
    resumed = time.monotonic()
    details.append(verdict.detail)
    assert not verdict and verdict.fail_open and verdict.reason == "timeout", verdict
    assert took < TIMEOUT_SEC + MARGIN_SEC, took
    assert gate.counters.get("decisions", "fail_open", "timeout") == 1
    while True:
        after = gate.check_portfolio_budget(symbol, "after", side="BUY", notional_usd=1)
        details.append(after.detail)
        if after.reason == "within_budget":
            break
        assert time.monotonic() - resumed < 3, after
        time.sleep(0.05)
    return details


def assert_no_password(caplog, details):
    shown = [record.getMessage() for record in caplog.records] + [str(detail) for detail in details]
    assert not [line for line in shown if GATE_PASSWORD in line]


def test_a_frozen_cluster_node_costs_at_most_timeout_sec_with_a_cluster_client_without_socket_timeout(cluster, caplog):
    with GateUser(cluster):
        client = RedisCluster(
            host="127.0.0.1", port=cluster[0].port, username=GATE_USER, password=GATE_PASSWORD, decode_responses=True,
            socket_timeout=None, socket_connect_timeout=None,
        )
        port = client.get_node_from_key("quantum:portfolio:budget:ETHUSDT").port
        frozen = next(node for node in cluster if node.port == port)
        other = next(s for s in SYMBOLS if client.get_node_from_key("quantum:portfolio:budget:%s" % s).port != port)
        gate = BudgetGate(client, timeout_sec=TIMEOUT_SEC, reset_timeout_sec=0.2, instance_id="frozen-cluster")
        try:
            with caplog.at_level(logging.DEBUG, logger=ALL_LOGGERS.name):
                details = freeze_then_recover(gate, client, frozen, "ETHUSDT", other)
            assert_no_password(caplog, details)
        finally:
            gate.close(1)
        # The Governor's client is as it was: no timeout set on it, still working.
        assert client.nodes_manager.connection_kwargs.get("socket_timeout") is None
        assert client.ping()
        client.delete("quantum:stream:p28.decisions")
        client.close()


def test_a_frozen_sentinel_master_costs_at_most_timeout_sec_with_a_master_client_without_socket_timeout(sentinel_set, caplog):
    """Freezes the master for less than the Sentinel's down-after time: no failover."""
    master, replica, sentinel_server = sentinel_set
    with GateUser([master, replica]):
        sentinel = Sentinel([("127.0.0.1", sentinel_server.port)], socket_timeout=None, socket_connect_timeout=None)
        client = sentinel.master_for(
            SENTINEL_MASTER, username=GATE_USER, password=GATE_PASSWORD, decode_responses=True, socket_timeout=None,
            socket_connect_timeout=None,
        )
        gate = BudgetGate(client, timeout_sec=TIMEOUT_SEC, reset_timeout_sec=0.2, instance_id="frozen-sentinel")
        try:
            with caplog.at_level(logging.DEBUG, logger=ALL_LOGGERS.name):
                details = freeze_then_recover(gate, client, master, "ETHUSDT")
            assert_no_password(caplog, details)
        finally:
            gate.close(1)
        assert client.connection_pool.connection_kwargs.get("socket_timeout") is None
        assert sentinel.sentinels[0].connection_pool.connection_kwargs.get("socket_timeout") is None
        assert client.ping()
        assert client.connection_pool.get_master_address()[1] == master.port
        client.delete("quantum:stream:p28.decisions")
        client.close()


def test_follows_a_sentinel_failover_to_the_new_master(sentinel_set):
    """Runs last on its deployment: afterwards the replica is the master."""
    master, replica, sentinel_server = sentinel_set
    sentinel = Sentinel([("127.0.0.1", sentinel_server.port)], socket_timeout=2)
    client = sentinel.master_for(SENTINEL_MASTER, socket_timeout=2, decode_responses=True)
    gate = BudgetGate(client, timeout_sec=ROUTING_TIMEOUT_SEC, reset_timeout_sec=0.2)
    try:
        exercise(gate, client, "before")
        sentinel_server.client().execute_command("SENTINEL", "FAILOVER", SENTINEL_MASTER)
        wait_for(lambda: sentinel.discover_master(SENTINEL_MASTER)[1] == replica.port, "the replica to be promoted")
        wait_for(lambda: replica.client().info("replication")["role"] == "master", "the new master to take writes")
        # Until the Sentinel turns the old master into a replica, it still takes writes: a split
        # brain no client can see. From then on it answers writes with READONLY.
        wait_for(lambda: master.client().info("replication")["role"] == "slave", "the old master to follow the new one")
        seed(replica.client(), "ETHUSDT")
        # A connection to the old master fails its first write (READONLY: a fail-open) and is
        # dropped; redis-py's Sentinel pool then connects to the new master.
        reasons = [gate.check_portfolio_budget("ETHUSDT", "after-%d" % i, side="BUY", notional_usd=100).reason for i in range(8)]
        assert reasons.count("within_budget") >= 7 and set(reasons) <= {"within_budget", "redis_unavailable"}, reasons
        exercise(gate, client, "after-failover")
        assert client.connection_pool.get_master_address()[1] == replica.port != master.port
    finally:
        gate.close(1)
        client.close()
