"""How ``dmp serve`` runs uvicorn, and the supervisor process of ``dmp serve --workers N``.

With several workers, ``dmp serve`` first repairs what a crash left (``Node.build(recover=True)``, which
imports and builds a whole node), then replaces its own process image with this module
(``os.execv``: same PID, so whoever started the server still stops it by that PID). The supervisor only starts
the workers, restarts one that dies and forwards signals: it imports uvicorn and this package's small HTTP
modules, not the node (about 25 MB instead of about 100 MB resident). Each worker process builds its own
node from the configuration in its environment (``server._app.worker_app``)."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from server._config import Config
from server._http import http_protocol
from server._logging import install as install_log_redaction

WORKER_CONFIG_ENV = "DMP_WORKER_CONFIG"


def uvicorn_options(cfg: Config, host: str, port: int, log_level: str, tls: bool) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` (besides the app and the number of workers). ``tls``: the caller
    checked that ``cfg`` names the certificate, key and client CA."""
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": False,
                               "timeout_graceful_shutdown": 10, "timeout_keep_alive": cfg.keep_alive_s,
                               "http": http_protocol(tls=False)}
    if tls:
        from server._tls import tls_options

        options.update(tls_options(str(cfg.path(cfg.tls_cert or "")), str(cfg.path(cfg.tls_key or "")),
                                   str(cfg.path(cfg.tls_client_ca or ""))))
    return options


def exec_supervisor(cfg: Config, host: str, port: int, log_level: str, tls: bool, workers: int) -> None:
    """Replace this process with the light supervisor of ``workers`` worker processes (does not return)."""
    os.environ[WORKER_CONFIG_ENV] = cfg.to_json()
    args = json.dumps({"host": host, "port": port, "log_level": log_level, "tls": tls, "workers": workers})
    logging.shutdown()            # flush the handlers: nothing of this process survives the exec
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "server._supervisor", args])  # noqa: S606 (no shell: argv)


def _supervise(argv: list[str]) -> None:
    import uvicorn

    args = json.loads(argv[1])
    install_log_redaction()
    logging.basicConfig(level=args["log_level"].upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = Config.from_json(os.environ[WORKER_CONFIG_ENV])
    options = uvicorn_options(cfg, args["host"], args["port"], args["log_level"], args["tls"])
    uvicorn.run("server._app:worker_app", factory=True, workers=args["workers"], **options)


if __name__ == "__main__":
    _supervise(sys.argv)
