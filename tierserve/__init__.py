"""tierserve: one OpenAI-compatible endpoint over tiers of LLMs, on Ray Serve and vLLM.

The public façade is small: the config model and loader. The app builder lives in
`tierserve.platform.app` (imports Ray); the CLI is the `tierserve` command.
"""

from tierserve.config import TierServeConfig, load_config, parse_config

__all__ = ["TierServeConfig", "load_config", "parse_config"]
__version__ = "0.1.0"
