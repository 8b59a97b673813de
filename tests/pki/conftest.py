"""One real test PKI for the whole session (see vihf_support.make_pkis)."""

from __future__ import annotations

import pytest
from vihf_support import Pkis, make_pkis


@pytest.fixture(scope="session")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> Pkis:
    return make_pkis(tmp_path_factory.mktemp("pkis"))
