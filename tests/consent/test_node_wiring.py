"""Where the consent checker cannot run, the node does not serve."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server._app import Node
from server._config import Config


def test_a_repository_in_front_of_a_remote_registry_refuses_to_start_without_no_consent(tmp_path):
    cfg = replace(Config.new(tmp_path), registry_url="http://127.0.0.1:9/xds/registry")
    with pytest.raises(RuntimeError, match="cannot apply the DMP consent rules"):
        Node.build(cfg)
