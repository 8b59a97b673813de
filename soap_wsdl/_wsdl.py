"""The WSDL and XSD documents of our SOAP endpoints, as served at ``?wsdl`` and ``?xsd=NAME``.

The files in ``soap_wsdl/wsdl/`` (package data) are written with relative schema locations
(``schemaLocation="rim.xsd"``) and a placeholder service address. Here they are rewritten for the URL the
endpoint is reached at, so that a client (zeep, SoapUI, a conformance tool) fetches every schema from the
server itself and never from the network at large. Plain text substitution: the documents are our own and
are never parsed here.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final, Literal
from xml.sax.saxutils import escape

Endpoint = Literal["registry", "repository", "dmp"]

_WSDL_FILES: Final[dict[str, str]] = {"registry": "registry.wsdl", "repository": "repository.wsdl",
                                      "dmp": "dmp.wsdl"}
# The soap12:address of every WSDL file, exactly as written there.
_ADDRESS_PLACEHOLDER: Final = 'location="http://localhost/ENDPOINT_URL"'
# Relative references between our files; file names are plain (no folder), so the match is strict.
_SCHEMA_LOCATION: Final = re.compile(r'schemaLocation="([A-Za-z0-9_.-]+\.xsd)"')


def wsdl_document(endpoint: Endpoint, endpoint_url: str) -> bytes:
    """The WSDL for that endpoint, ready to serve at ``{endpoint_url}?wsdl``.

    ``soap12:address/@location`` is ``endpoint_url``; every ``xsd:import``/``xsd:include`` schemaLocation
    becomes ``{endpoint_url}?xsd={name}`` (name = file name, e.g. ``rim.xsd``).
    """
    file_name = _WSDL_FILES.get(endpoint)
    if file_name is None:
        raise ValueError(f"unknown SOAP endpoint {endpoint!r}")
    text = _read(file_name).replace(_ADDRESS_PLACEHOLDER, f'location="{_attribute(endpoint_url)}"')
    return _rewrite_schema_locations(text, endpoint_url).encode("utf-8")


def schema_document(name: str, endpoint_url: str) -> bytes | None:
    """The XSD named ``name``, ready to serve at ``{endpoint_url}?xsd={name}``; None for any other name.

    Only the names of the ``.xsd`` files shipped in ``soap_wsdl/wsdl/`` are accepted (compared as whole
    strings, so no path can be smuggled in). The schema's own imports are rewritten as in
    :func:`wsdl_document`.
    """
    if name not in _schema_names():
        return None
    return _rewrite_schema_locations(_read(name), endpoint_url).encode("utf-8")


def _rewrite_schema_locations(text: str, endpoint_url: str) -> str:
    shipped = _schema_names()
    base = _attribute(endpoint_url)

    def absolute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in shipped:
            return match.group(0)
        return f'schemaLocation="{base}?xsd={name}"'

    return _SCHEMA_LOCATION.sub(absolute, text)


def _attribute(value: str) -> str:
    """``value`` escaped for a double-quoted XML attribute."""
    return escape(value, {'"': "&quot;"})


def _folder() -> Traversable:
    return resources.files("soap_wsdl") / "wsdl"


@functools.cache
def _schema_names() -> frozenset[str]:
    return frozenset(entry.name for entry in _folder().iterdir() if entry.name.endswith(".xsd"))


@functools.cache
def _read(file_name: str) -> str:
    return (_folder() / file_name).read_text(encoding="utf-8")
