"""docs/configuration.md is generated from the config models and must not drift."""

from __future__ import annotations

from tierserve.config import TierServeConfig, VariantConfig
from tierserve.config_reference import reference_markdown
from tierserve.platform.cli import REFERENCE_DOC


def test_committed_reference_matches_the_models():
    assert REFERENCE_DOC.read_text(encoding="utf-8") == reference_markdown(TierServeConfig), (
        "docs/configuration.md is stale: run `tierserve config reference`")


def test_every_field_of_every_model_is_documented():
    text = reference_markdown(TierServeConfig)
    for name in VariantConfig.model_fields:
        assert f"| `{name}` |" in text
    assert "## `tiers[].variants[]` — VariantConfig" in text
    assert "| `stream_interval_tokens` | int (≥1, ≤64) | `1` |" in text
    assert "| `tiers` | list of TierConfig (min length 1) | **required** |" in text
