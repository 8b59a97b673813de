"""Composition root: configuration, the ASGI app and its routes, the ``dmp`` CLI. Nothing imports it."""

from server._app import create_app
from server._config import Config

__all__ = ["Config", "create_app"]
