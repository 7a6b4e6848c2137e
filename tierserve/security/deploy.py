"""Deploy-time security checks and secret references (pure; called by the app builder).

Key digests from a secret file are merged into the config here, in the process that
builds the app, so router replicas receive them with the config; the weight key's file is
only named, never read here: each tier replica reads it where it decrypts.
"""

from __future__ import annotations

from tierserve.config import LOOPBACK_HOSTS, TierServeConfig
from tierserve.errors import ConfigError
from tierserve.security.keys import with_key_file


def apply_security_settings(config: TierServeConfig, api_keys_file: str | None,
                            weights_key_file: str | None) -> TierServeConfig:
    """Merge the key file's entries and fill the weight key's file from the environment."""
    security = with_key_file(config.security, api_keys_file)
    if security.weights.key_file is None and weights_key_file:
        weights = security.weights.model_copy(update={"key_file": weights_key_file})
        security = security.model_copy(update={"weights": weights})
    return config.model_copy(update={"security": security})


def check_deployable(config: TierServeConfig) -> None:
    """Refuse an app nobody could use, or one open to the network without keys."""
    security, host = config.security, config.server.host
    if security.auth == "disabled" and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"security.auth is 'disabled' but the server binds '{host}': without keys it may "
            f"only listen on a loopback address {LOOPBACK_HOSTS}")
    if security.auth == "required" and not security.api_keys:
        raise ConfigError(
            "security.auth is 'required' but no API keys are configured: add hashed keys to "
            "security.api_keys or a file named by security.api_keys_file / "
            "TIERSERVE_API_KEYS_FILE (create one with `tierserve keys create`), or set "
            "security.auth: disabled explicitly for a local demo")


def auth_disabled_banner(config: TierServeConfig) -> str | None:
    """The loud startup warning for `tierserve up` when auth is off; None when it is on."""
    if config.security.auth != "disabled":
        return None
    line = "!" * 78
    return (f"{line}\n!! WARNING: authentication is DISABLED (security.auth: disabled).\n"
            f"!! Anyone who can reach {config.server.host}:{config.server.port} is an admin.\n"
            f"!! Local demo only; production configs require API keys (docs/security.md).\n"
            f"{line}")


def weights_opener_options(config: TierServeConfig) -> dict:
    """What the weight store's 'encrypted' opener needs on each replica: the key's file
    (a path, never the key) and where clear copies may live."""
    if config.weights.opener != "encrypted":
        return {}
    weights = config.security.weights
    if not weights.key_file:
        raise ConfigError("weights.opener is 'encrypted' but no weight key is configured: set "
                          "security.weights.key_file or TIERSERVE_WEIGHTS_KEY_FILE")
    return {"key_file": weights.key_file, "tmpfs_dir": weights.tmpfs_dir}
