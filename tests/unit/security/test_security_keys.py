"""API keys: generation, digests, roles, limits, key files, deploy-time checks."""

from __future__ import annotations

import hashlib

import pytest

from tierserve.config import RateLimitConfig, SecurityConfig, parse_config
from tierserve.context.store import ConversationKey
from tierserve.errors import ConfigError
from tierserve.security.deploy import (
    apply_security_settings,
    auth_disabled_banner,
    check_deployable,
)
from tierserve.security.keys import (
    KEY_PREFIX,
    KeyRing,
    generate_key,
    hash_key,
    key_entry,
    load_key_file,
    with_key_file,
)

from tests.unit.conftest import small_config


def test_keys_are_random_and_stored_as_sha256():
    a, b = generate_key(), generate_key()
    assert a != b and a.startswith(KEY_PREFIX) and len(a) >= 40
    entry = key_entry("alice", "inference", a)
    assert entry.sha256 == hashlib.sha256(a.encode()).hexdigest() == hash_key(a)
    assert a not in entry.model_dump_json()


def test_keyring_finds_role_and_limits():
    admin, app = generate_key(), generate_key()
    ring = KeyRing([key_entry("ops", "admin", admin),
                    key_entry("app", "inference", app, requests_per_min=5)],
                   RateLimitConfig(requests_per_min=100, tokens_per_min=1000))
    ops = ring.lookup(admin)
    assert (ops.key_id, ops.role, ops.is_admin) == ("ops", "admin", True)
    assert (ops.requests_per_min, ops.tokens_per_min) == (100, 1000)
    assert ring.lookup(app).requests_per_min == 5 and not ring.lookup(app).is_admin
    assert ring.lookup(admin + "x") is None and ring.lookup("") is None
    assert [k["id"] for k in ring.describe()] == ["ops", "app"]
    assert "sha256" not in ring.describe()[0]


def test_owner_matches_the_conversation_scope():
    key = generate_key()
    ring = KeyRing([key_entry("app", "inference", key)], RateLimitConfig())
    assert ring.by_id("app").owner == ConversationKey.for_credential(key, "c").owner


def test_rate_limits_off_means_unlimited_principals():
    key = generate_key()
    ring = KeyRing([key_entry("app", "inference", key)], RateLimitConfig(enabled=False))
    assert not ring.lookup(key).limited


def test_duplicate_ids_or_digests_are_config_errors():
    entry = key_entry("a", "admin", generate_key()).model_dump()
    with pytest.raises(ConfigError, match="unique"):
        parse_config(small_config(security={"api_keys": [entry, {**entry, "id": "b"}]}))
    with pytest.raises(ConfigError, match="sha256"):
        parse_config(small_config(security={"api_keys": [{**entry, "sha256": "abc"}]}))


def test_key_file_list_or_mapping(tmp_path):
    k1, k2 = key_entry("a", "admin", generate_key()), key_entry("b", "inference", generate_key())
    listed = tmp_path / "list.yaml"
    listed.write_text(f"- {{id: a, role: admin, sha256: {k1.sha256}}}\n")
    mapped = tmp_path / "map.yaml"
    mapped.write_text(f"api_keys:\n  - {{id: b, role: inference, sha256: {k2.sha256}}}\n")
    assert load_key_file(listed) == [k1]
    assert load_key_file(mapped) == [k2]
    merged = with_key_file(SecurityConfig(api_keys=[k2]), listed)
    assert [k.id for k in merged.api_keys] == ["b", "a"]
    assert with_key_file(merged, listed) == merged  # idempotent


def test_bad_key_files_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_key_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {id: a, role: superuser, sha256: " + "0" * 64 + "}\n")
    with pytest.raises(ConfigError, match="role"):
        load_key_file(bad)


def test_deploy_requires_keys_unless_explicitly_disabled(tmp_path):
    with pytest.raises(ConfigError, match="no API keys"):
        check_deployable(parse_config(small_config(security={})))
    keyfile = tmp_path / "keys.yaml"
    keyfile.write_text(f"- {{id: a, role: admin, sha256: {hash_key('k')}}}\n")
    config = apply_security_settings(parse_config(small_config(security={})), str(keyfile),
                                     "/run/weights.key")
    check_deployable(config)
    assert config.security.weights.key_file == "/run/weights.key"
    assert auth_disabled_banner(config) is None
    open_config = parse_config(small_config())
    check_deployable(open_config)
    assert "DISABLED" in auth_disabled_banner(open_config)


def test_auth_disabled_only_on_loopback():
    with pytest.raises(ConfigError, match="loopback"):
        parse_config(small_config(server={"host": "0.0.0.0"}))
    # `tierserve up --host` copies the server block without validation: the deploy check.
    config = parse_config(small_config())
    exposed = config.model_copy(update={"server": config.server.model_copy(
        update={"host": "0.0.0.0"})})
    with pytest.raises(ConfigError, match="loopback"):
        check_deployable(exposed)


def test_shipped_configs():
    from tierserve.config import load_config
    from tierserve.platform.settings import PACKAGE_ROOT

    production = load_config(PACKAGE_ROOT / "configs" / "deepseek.yaml")
    assert production.security.auth == "required"
    assert production.security.api_keys_file
    assert load_config(PACKAGE_ROOT / "configs" / "local.yaml").security.auth == "disabled"
