"""The gate's own Redis connections, made from the client the Governor passes in."""

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["bounded_client"]

# Connection arguments that belong to the pool they came from, not to a copy of it.
_POOL_BOUND = ("maint_notifications_pool_handler",)


def bounded_client(given, timeout_sec):
    """``(client, owned)``: a client whose every call is bounded by ``timeout_sec`` and never
    retried, on a connection pool of its own (``owned`` True), made from a redis:// URL or from a
    ``redis.Redis`` on a plain connection pool (same host, auth, TLS, db, ``decode_responses``).
    Any other client (Cluster, Sentinel) is given back as it is (``owned`` False)."""
    t = timeout_sec
    bounded = {"socket_timeout": t, "socket_connect_timeout": t, "retry": Retry(NoBackoff(), 0), "retry_on_error": [], "health_check_interval": 0}
    if isinstance(given, str):
        return redis.Redis.from_url(given, **bounded), True
    pool = getattr(given, "connection_pool", None)
    if isinstance(given, redis.Redis) and type(pool) in (redis.ConnectionPool, redis.BlockingConnectionPool):
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in _POOL_BOUND}
        kwargs.update(bounded)
        for name in ("orig_socket_timeout", "orig_socket_connect_timeout"):
            if name in kwargs:
                kwargs[name] = t
        if "retry_on_timeout" in kwargs:
            kwargs["retry_on_timeout"] = False
        return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)), True
    return given, False

