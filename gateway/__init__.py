"""The ASGI gateway: configuration, app factory, metrics and the command line."""

from gateway.app import Gateway, create_app
from gateway.config import ConfigError, GatewayConfig, load_config

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "create_app", "load_config"]
