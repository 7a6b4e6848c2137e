def test_redis_fixture_serves_and_restarts(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    client.set("k", "v")
    redis_server.kill()
    redis_server.start()
    assert client.ping()
