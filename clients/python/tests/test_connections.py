"""What the gate knows of the client passed in without asking Redis: the passwords it keeps out
of every text it writes, and the Sentinel client it derives (the Governor's left as it was)."""

from redis.sentinel import Sentinel

from p28_budget_gate.connections import bounded_client, close_client, error_text, secrets_of


def test_finds_the_passwords_of_a_url_and_of_a_sentinel_managed_client_and_its_sentinels():
    assert secrets_of("redis://gate:p%40ss@127.0.0.1:1/0") == {"p@ss"}
    assert secrets_of("redis://127.0.0.1:1") == frozenset()
    sentinel = Sentinel([("127.0.0.1", 1)], sentinel_kwargs={"password": "sentinel-pw"})
    assert secrets_of(sentinel.master_for("mymaster", password="master-pw")) == {"sentinel-pw", "master-pw"}


def test_error_text_names_no_password():
    error = ConnectionError("AUTH failed for master-pw at Connection(host=h,password=other-pw,db=0)")
    text = error_text(error, {"master-pw"})
    assert "master-pw" not in text and "other-pw" not in text and "password=<redacted>" in text
    assert error_text(TimeoutError(), set()) == "TimeoutError"


def test_a_sentinel_client_is_copied_with_bounded_timeouts_and_left_as_it_was():
    sentinel = Sentinel([("127.0.0.1", 1)], socket_timeout=None, sentinel_kwargs={"password": "sentinel-pw"})
    given = sentinel.master_for("mymaster", password="master-pw", socket_timeout=None, decode_responses=True)
    before = [dict(given.connection_pool.connection_kwargs), dict(sentinel.sentinels[0].connection_pool.connection_kwargs)]
    client, owned = bounded_client(given, 0.05)
    try:
        pool = client.connection_pool
        assert owned and client is not given and pool is not given.connection_pool
        assert (pool.service_name, pool.is_master, pool.connection_class) == ("mymaster", True, given.connection_pool.connection_class)
        assert pool.connection_kwargs["socket_timeout"] == pool.connection_kwargs["socket_connect_timeout"] == 0.05
        assert pool.connection_kwargs["password"] == "master-pw" and pool.connection_kwargs["decode_responses"] is True
        bounded_sentinels = pool.sentinel_manager.sentinels
        assert [s.connection_pool.connection_kwargs["socket_timeout"] for s in bounded_sentinels] == [0.05]
        assert bounded_sentinels[0].connection_pool.connection_kwargs["password"] == "sentinel-pw"
    finally:
        close_client(client)
    assert [given.connection_pool.connection_kwargs, sentinel.sentinels[0].connection_pool.connection_kwargs] == before
    assert given.connection_pool.sentinel_manager is sentinel and pool.sentinel_manager is not sentinel
