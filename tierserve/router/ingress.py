"""The router ingress deployment: a plain class; `platform.app` applies Serve options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tierserve.config import parse_config
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import HandleTierClient


class RouterIngress:
    """Holds one RouterService; Ray Serve asks it for its ASGI app after construction."""

    def __init__(self, config: dict, handles: Mapping[str, Any]):
        self.service = RouterService(parse_config(config), HandleTierClient(handles))

    def __serve_build_asgi_app__(self):
        return create_app(self.service)
