"""The Python gate on a real Redis Cluster and a real Sentinel deployment, with the clients a
Governor would pass in: ``redis.cluster.RedisCluster`` and ``Sentinel(...).master_for(...)``."""

import time

import pytest
import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from p28_budget_gate import BudgetGate

from conftest import SENTINEL_MASTER, budget_fields, wait_for

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
    gate = BudgetGate(client, instance_id="cluster-gate")
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


@pytest.mark.parametrize("decode", [True, False])
def test_decides_reserves_releases_and_logs_through_a_sentinel_provided_master(sentinel_set, decode):
    master, _, sentinel_server = sentinel_set
    sentinel = Sentinel([("127.0.0.1", sentinel_server.port)], socket_timeout=2)
    client = sentinel.master_for(SENTINEL_MASTER, socket_timeout=2, decode_responses=decode)
    gate = BudgetGate(client, instance_id="sentinel-gate")
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


def test_follows_a_sentinel_failover_to_the_new_master(sentinel_set):
    """Runs last on its deployment: afterwards the replica is the master."""
    master, replica, sentinel_server = sentinel_set
    sentinel = Sentinel([("127.0.0.1", sentinel_server.port)], socket_timeout=2)
    client = sentinel.master_for(SENTINEL_MASTER, socket_timeout=2, decode_responses=True)
    gate = BudgetGate(client, reset_timeout_sec=0.2)
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
