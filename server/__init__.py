"""Composition root: configuration, the ASGI app and its routes, the ``dmp`` CLI. Nothing imports it.

The names are loaded on first use, so that a process that needs only a small part of the package does not
import the whole node."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server._app import create_app
    from server._config import Config

__all__ = ["Config", "create_app"]
_WHERE = {"Config": "server._config", "create_app": "server._app"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'server' has no attribute {name!r}")
