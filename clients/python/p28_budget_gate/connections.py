"""The gate's own Redis connections, made from the client the Governor passes in.

Every client made here reaches the same deployment as the one passed in (same nodes, auth, TLS,
db, ``decode_responses``), with the gate's timeout as socket and connect timeout and no retries,
on connections of its own: the Governor's client is only read, never changed.
"""

import copy
import inspect
import re
import threading
from urllib.parse import unquote, urlparse

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.connection import Encoder
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool

__all__ = ["bounded_client", "close_client", "error_text", "secrets_of"]

# Connection arguments that belong to the pool they came from, not to a copy of it.
_POOL_BOUND = ("maint_notifications_pool_handler", "connection_pool")
# Cluster-wide settings of a RedisCluster copied to the gate's own, by NodesManager attribute.
_CLUSTER_SETTINGS = {
    "require_full_coverage": "_require_full_coverage",
    "dynamic_startup_nodes": "_dynamic_startup_nodes",
    "address_remap": "address_remap",
}


def _bounded(kwargs, timeout_sec, retry=True):
    """Connection arguments ``kwargs`` with ``timeout_sec`` as socket and connect timeout, no
    retries (``retry`` False: a RedisCluster's nodes, which take no ``retry`` argument and are
    made without retries) and no health check round trip."""
    t = timeout_sec
    out = {k: v for k, v in kwargs.items() if k not in _POOL_BOUND}
    out.update({"socket_timeout": t, "socket_connect_timeout": t, "retry_on_error": [], "health_check_interval": 0})
    if retry:
        out["retry"] = Retry(NoBackoff(), 0)
    for name in ("orig_socket_timeout", "orig_socket_connect_timeout"):
        if name in out:
            out[name] = t
    if "retry_on_timeout" in out:
        out["retry_on_timeout"] = False
    return out


def _plain(pool, timeout_sec):
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **_bounded(pool.connection_kwargs, timeout_sec)))


def _sentinel(pool, timeout_sec):
    """A client on a SentinelConnectionPool of its own for the same service: it asks the same
    Sentinels for the master before each new connection, so it follows failovers; and it asks
    them through bounded clients of its own (a copy of the Sentinel manager), so a hanging
    Sentinel costs ``timeout_sec`` too."""
    manager = copy.copy(pool.sentinel_manager)
    manager.sentinels = [bounded_client(sentinel, timeout_sec)[0] for sentinel in pool.sentinel_manager.sentinels]
    bounded_pool = SentinelConnectionPool(
        pool.service_name, manager, connection_class=pool.connection_class, is_master=pool.is_master,
        check_connection=pool.check_connection, **_bounded(pool.connection_kwargs, timeout_sec),
    )
    return redis.Redis(connection_pool=bounded_pool)


class DeferredCluster:
    """A RedisCluster of the gate's own, made on first use: making one asks a node for the slot
    map, which the gate's constructor must neither wait for nor fail on. Until it can be made,
    each use raises why (a fail-open, like any Redis error). Scripts registered on it run on the
    RedisCluster, which routes each call to the node owning its key."""

    def __init__(self, make, encoder):
        self._make = make
        self._encoder = encoder
        self._lock = threading.Lock()
        self._cluster = None

    def get_encoder(self):
        return self._encoder

    def register_script(self, script):
        return Script(self, script)

    def cluster(self):
        made = self._cluster
        if made is None:
            with self._lock:
                if self._cluster is None:
                    self._cluster = self._make()
                made = self._cluster
        return made

    def __getattr__(self, name):
        if name.startswith("_"):  # its own state, or a copy's before it has any: never the cluster's
            raise AttributeError(name)
        return getattr(self.cluster(), name)

    def close(self):
        with self._lock:
            made, self._cluster = self._cluster, None
        if made is not None:
            made.close()


def _cluster(given, timeout_sec):
    """A DeferredCluster that makes a RedisCluster from the one passed in: its known nodes as
    startup nodes, its connection settings with bounded timeouts, no cluster-level retries."""
    manager = given.nodes_manager
    kwargs = _bounded(manager.connection_kwargs, timeout_sec, retry=False)
    # The passed client's own on-connect hook (bound to it) is replaced by the new client's;
    # a hook the Governor gave is kept.
    kwargs.pop("redis_connect_func", None)
    if getattr(given, "user_on_connect_func", None) is not None:
        kwargs["redis_connect_func"] = given.user_on_connect_func
    options = {name: getattr(manager, attribute) for name, attribute in _CLUSTER_SETTINGS.items() if hasattr(manager, attribute)}
    for name in ("reinitialize_steps", "read_from_replicas", "load_balancing_strategy"):
        if getattr(given, name, None):  # read_from_replicas is deprecated: passed only when set
            options[name] = getattr(given, name)
    addresses = []
    for node in list(manager.startup_nodes.values()) + list(manager.nodes_cache.values()):
        if (node.host, node.port) not in addresses:
            addresses.append((node.host, node.port))
    if getattr(manager, "from_url", False):
        # Connection arguments parsed from a URL are a connection pool's, not Redis()'s: keep
        # them so by making the copy from a URL too (without credentials: those stay in kwargs).
        # A cluster has one db (the URL's, which RedisCluster refuses as an argument).
        for name in ("host", "port", "db"):
            kwargs.pop(name, None)
        host, port = addresses[0]
        options["url"] = "redis://%s:%d" % ("[%s]" % host if ":" in host else host, port)
        addresses = addresses[1:]

    # Only what this redis-py's RedisCluster takes (older ones lack some of these settings).
    accepted = inspect.signature(RedisCluster.__init__).parameters
    options.update({"retry": Retry(NoBackoff(), 0)} if "retry" in accepted else {"cluster_error_retry_attempts": 0})
    options = {name: value for name, value in options.items() if name in accepted}

    def make():
        return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in addresses], **options, **kwargs)

    return DeferredCluster(make, Encoder(kwargs.get("encoding", "utf-8"), kwargs.get("encoding_errors", "strict"), kwargs.get("decode_responses", False)))


def bounded_client(given, timeout_sec):
    """``(client, owned)``: a client whose every call is bounded by ``timeout_sec`` and never
    retried, on connections of its own (``owned`` True), made from a redis:// URL or from the
    Governor's client: a ``redis.Redis`` on a plain connection pool or on a Sentinel's, or a
    ``RedisCluster``. Any other client is given back as it is (``owned`` False)."""
    if isinstance(given, str):
        return redis.Redis.from_url(given, **_bounded({}, timeout_sec)), True
    if isinstance(given, RedisCluster):
        return _cluster(given, timeout_sec), True
    pool = getattr(given, "connection_pool", None)
    if isinstance(given, redis.Redis) and type(pool) in (redis.ConnectionPool, redis.BlockingConnectionPool):
        return _plain(pool, timeout_sec), True
    if isinstance(given, redis.Redis) and type(pool) is SentinelConnectionPool:
        return _sentinel(pool, timeout_sec), True
    return given, False


def close_client(client):
    """Closes the connections of a client ``bounded_client`` made (owned)."""
    if isinstance(client, DeferredCluster):
        client.close()
        return
    pool = client.connection_pool
    pool.disconnect()
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            sentinel.connection_pool.disconnect()


# ``password=...`` as connection settings print (a pool's repr in some redis-py versions).
_PASSWORD_SETTING = re.compile(r"(pass(?:word|wd)?\s*[=:]\s*)[^\s,)>'\"]+", re.IGNORECASE)


def secrets_of(given):
    """The passwords the client passed in logs in with (its own and, for a Sentinel-managed
    client, its Sentinels'), to be kept out of every text the gate writes."""
    found = set()
    if isinstance(given, str):
        found.add(unquote(urlparse(given).password or ""))
    elif isinstance(given, RedisCluster):
        found.add(given.nodes_manager.connection_kwargs.get("password"))
    else:
        pool = getattr(given, "connection_pool", None)
        found.add(getattr(pool, "connection_kwargs", {}).get("password"))
        for sentinel in getattr(getattr(pool, "sentinel_manager", None), "sentinels", ()):
            found.add(sentinel.connection_pool.connection_kwargs.get("password"))
    return frozenset(s for s in found if isinstance(s, str) and s)


def error_text(error, secrets):
    """An error's message (its type's name when it has none) without the passwords ``secrets``
    nor any ``password=`` setting it prints: what the gate logs and puts in a decision."""
    text = str(error) or type(error).__name__
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    return _PASSWORD_SETTING.sub(r"\1<redacted>", text)
