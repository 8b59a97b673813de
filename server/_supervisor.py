"""How ``dmp serve`` runs uvicorn, and the pre-fork supervisor of ``dmp serve --workers N``.

With several workers, the process that ran ``dmp serve`` stays their supervisor (same PID: whoever started the
server stops it by that PID). It imports the node's code and the database driver — no connection, file,
thread or event loop of a node: nothing that must not cross a ``fork`` — freezes what it imported
(``gc.freeze``: the collector does not write into those objects, so their pages stay shared), opens the
listening socket of the port (``_port_socket``) and forks the workers, which share the imported code's pages
copy-on-write instead of each importing it again, and all accept on that socket, each taking a connection
only when it holds no more open ones than the others (``server._balance``). Then it replaces its own image
(``execv``, same PID, same children, the socket and the workers' connection board kept) with a light one
that imports none of the node: the copy of the imported code that only the
supervisor still held, the pages both workers have since written, is freed (docs/architecture.md;
benchmarks/README.md, issue 13 session 6).

- Crash recovery (``Node.build(recover=True)``: schema check, orphan blobs) runs once, in a forked child that
  exits before any worker starts, so that the supervisor never opens the node's database or blob store.
- Each worker builds its own node (``create_app(recover=False)``) and runs uvicorn's server on the shared
  socket; uvicorn's own signal handling gives it the graceful shutdown (in-flight requests finish within
  ``timeout_graceful_shutdown``). A connection waiting in the queue stays there for the workers still
  accepting: a worker that stops or dies loses none.
- A worker that dies is replaced: the light supervisor execs the full one again, which imports the node,
  forks the missing worker and becomes light again.
- SIGTERM or SIGINT to the supervisor is passed to every worker, which are waited for (killed after the
  graceful timeout and a margin) before the supervisor exits. The three signals it handles stay blocked
  across the ``execv`` and are taken with ``sigtimedwait``: none is lost between the two images.
- No ``multiprocessing``: no resource tracker process, no re-import in a spawned interpreter."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from server._balance import BalancedListener, Board
from server._config import Config
from server._logging import install as install_log_redaction

log = logging.getLogger("dmp.server")
T = TypeVar("T")
CONFIG_ENV = "DMP_SUPERVISOR_CONFIG"
"""The node's configuration (JSON) handed from one image of the supervisor to the next."""
GRACEFUL_S = 10
"""Seconds a stopping worker gives its in-flight requests (uvicorn's ``timeout_graceful_shutdown``)."""
_KILL_MARGIN_S = 5
"""Seconds past the graceful timeout after which the supervisor kills a worker that has not exited."""
_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
_BACKLOG = 2048
"""The listening socket's queue (uvicorn's default backlog)."""
_QUICK_DEATH_S = 1.0
"""A worker that dies sooner than this after its start is replaced only after a pause (no busy loop when
every start fails, e.g. a setting the workers cannot use)."""


@dataclass(frozen=True)
class _Plan:
    """What one image of the supervisor passes to the next (JSON in argv)."""

    host: str
    port: int
    log_level: str
    tls: bool
    workers: int
    fd: int = -1
    board_fd: int = -1
    started: dict[int, float] = field(default_factory=dict)
    """Live workers: PID -> time.monotonic() of their start (the same clock in every process)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> _Plan:
        raw = json.loads(text)
        return cls(**{**raw, "started": {int(pid): when for pid, when in raw["started"].items()}})


def uvicorn_options(cfg: Config, host: str, port: int, log_level: str, tls: bool) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` / ``uvicorn.Config`` (besides the app). ``tls``: the caller
    checked that ``cfg`` names the certificate, key and client CA."""
    from server._http import http_protocol

    # loop "asyncio", never uvloop even if installed: server._tls patches asyncio's SSL protocol, and the
    # workers' balanced accept (server._balance) goes through asyncio's call of socket.accept()
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": False,
                               "loop": "asyncio",
                               "timeout_graceful_shutdown": GRACEFUL_S, "timeout_keep_alive": cfg.keep_alive_s,
                               "http": http_protocol(tls=False), "ws": "none", "lifespan": "on"}
    if tls:
        from server._tls import tls_options

        options.update(tls_options(str(cfg.path(cfg.tls_cert or "")), str(cfg.path(cfg.tls_key or "")),
                                   str(cfg.path(cfg.tls_client_ca or ""))))
    return options


def frozen(app: T) -> T:
    """``app``, after moving every object alive now (the node just built: trust store, engine, caches, the
    code) out of the cyclic collector's reach (``gc.freeze``). Its full collections then walk only what was
    made since: under ITI-41 load a full collection of the unfrozen heap paused the process ~240 ms (all its
    requests with it) every few hundred documents, against ~2 ms frozen (benchmarks/README.md, issue 13
    session 7). What is frozen is never collected: a cycle among those objects that becomes garbage later (a
    trust store replaced after its files change) stays in memory."""
    gc.collect()
    gc.freeze()
    return app


def serve_workers(cfg: Config, host: str, port: int, log_level: str, tls: bool, workers: int) -> int:
    """Supervise ``workers`` forked worker processes until SIGTERM or SIGINT; the exit status (non-zero if
    crash recovery failed). Called in the process that ran ``dmp serve``, which it replaces (``execv``)."""
    _preload(cfg)
    if _in_child(lambda: _recover(cfg)) != 0:
        log.error("crash recovery failed: no worker started")
        return 1
    plan = _Plan(host, port, log_level, tls, workers)
    try:
        listening = _port_socket(host, port)
        listening.listen(_BACKLOG)   # connections wait here while the workers start or are replaced
    except OSError as exc:
        log.error("cannot bind %s:%d: %s", host, port, exc)
        return 1
    board = Board.create(workers)
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)   # taken with sigtimedwait, across the execv too
    _fork_workers(cfg, replace(plan, fd=listening.fileno(), board_fd=board.fd), listening, board)
    return 1   # not reached: _fork_workers execs the light supervisor


def _fork_workers(cfg: Config, plan: _Plan, listening: socket.socket, board: Board) -> None:
    """In the full image (the node's code imported): fork the missing workers, then become the light
    supervisor. Does not return."""
    gc.freeze()   # every object so far (the imported code) out of the collector's reach: its pages stay shared
    options = uvicorn_options(cfg, plan.host, plan.port, plan.log_level, plan.tls)
    started = dict(plan.started)
    try:
        while len(started) < plan.workers:
            pid, when = _start_worker(cfg, options, listening, board)
            started[pid] = when
        os.set_inheritable(listening.fileno(), True)
        os.environ[CONFIG_ENV] = cfg.to_json()
        _exec("--supervise", replace(plan, started=started))
    except BaseException:
        log.exception("the supervisor could not start its workers: stopping")
        _stop(started)
        raise


def _exec(mode: str, plan: _Plan) -> None:
    logging.shutdown()   # flush the handlers: nothing of this image survives the exec
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "server._supervisor", mode, plan.to_json()])  # noqa: S606


def _main(argv: list[str]) -> None:
    """The entry point of the supervisor's images after the first (``python -m server._supervisor``)."""
    mode, plan = argv[1], _Plan.from_json(argv[2])
    install_log_redaction()
    logging.basicConfig(level=plan.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    listening = socket.socket(fileno=plan.fd)
    board = Board(plan.board_fd, plan.workers)
    if mode == "--fork":   # the full image again, to replace a worker that died
        cfg = Config.from_json(os.environ[CONFIG_ENV])
        _preload(cfg)
        _fork_workers(cfg, plan, listening, board)
    started = dict(plan.started)
    try:
        replace_one = _supervise(started, plan.workers, board)
    except BaseException:
        _stop(started)
        raise
    if replace_one:
        _exec("--fork", replace(plan, started=started))
    _stop(started)
    listening.close()
    board.close()
    sys.exit(0)


def _port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (SO_REUSEADDR, as uvicorn's: a restart does not wait for the
    previous connections' TIME_WAIT). Not SO_REUSEPORT: no other process may join the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET   # as uvicorn: "localhost" is 127.0.0.1
    # proto=IPPROTO_TCP, as uvicorn's own sockets: asyncio sets TCP_NODELAY only on accepted connections whose
    # proto says TCP (base_events._set_nodelay). With proto 0, Nagle's algorithm held each answer's last
    # segment until the client's delayed ACK: two workers idled at ~120 ITI-41/s (benchmarks/README.md).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _preload(cfg: Config) -> None:
    """Import, before the fork, what every worker would otherwise import on its own: the node's code, and the
    SQLAlchemy dialect and driver of the configured database (``import_dbapi`` imports ``sqlite3`` or psycopg,
    it connects to nothing)."""
    import importlib

    import anyio._backends._asyncio  # noqa: F401  (the first run_in_threadpool)
    import uvicorn.lifespan.on
    import uvicorn.loops.auto  # noqa: F401

    importlib.import_module("_strptime")   # what the first datetime.strptime would import
    import server._app  # noqa: F401  (the whole node's code: lxml, cryptography, SQLAlchemy, Starlette, ...)

    if not cfg.registry_url:
        from sqlalchemy.engine import make_url

        make_url(cfg.database_url).get_dialect().import_dbapi()


def _recover(cfg: Config) -> None:
    """In a child process: the schema check and crash recovery of ``Node.build(recover=True)``."""
    from server._app import Node

    node = Node.build(cfg, recover=True)
    if node.store is not None:
        node.store.dispose()


def _in_child(work: Any) -> int:
    """Run ``work()`` in a forked child and return its exit status (0: returned; 1: raised, logged)."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            work()
            status = 0
        except BaseException:
            log.exception("crash recovery failed")
        finally:
            logging.shutdown()
            os._exit(status)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _start_worker(cfg: Config, options: dict[str, Any], listening: socket.socket, board: Board
                  ) -> tuple[int, float]:
    slot = board.free_slot()
    pid = os.fork()
    if pid == 0:
        _worker(cfg, options, BalancedListener(board, slot, listening.detach()))   # does not return
    board.claim(slot, pid)
    log.info("started worker process %d", pid)
    return pid, time.monotonic()


def _worker(cfg: Config, options: dict[str, Any], listening: BalancedListener) -> None:
    """The body of a worker process: its own node and uvicorn server on the shared socket; never returns."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Before uvicorn's handlers are installed: stop at once. After its graceful shutdown, uvicorn
            # raises the signal it caught again, to this handler: the worker then exits 0 below.
            signal.signal(sig, _exit_now)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        import uvicorn

        from server._app import create_app

        server = uvicorn.Server(uvicorn.Config(frozen(create_app(cfg, recover=False)), **options))
        server.run(sockets=[listening])   # uvicorn's handlers: SIGTERM/SIGINT = graceful shutdown
        status = 0 if server.started else 3
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        log.exception("worker process %d failed", os.getpid())
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)   # never the supervisor's code: no atexit, no finally of the parent's frames


def _exit_now(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def stop_requested(info: signal.struct_siginfo | None) -> bool:
    """Whether an answer of ``sigtimedwait`` asks the supervisor to stop: SIGTERM or SIGINT, nothing else. A
    time-out (None), SIGCHLD, or an answer that names no signal of the set means: reap and carry on. The last
    happens: with py-spy attached to the supervisor under load, ``sigtimedwait`` came back with a siginfo whose
    signal number was a large negative value (the interrupted system call's structure never filled in), and
    taking any signal but SIGCHLD for a stop request made the whole server shut down mid-run (issue 13)."""
    return info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT)


def _supervise(started: dict[int, float], workers: int, board: Board) -> bool:
    """Reap the workers that exit until SIGTERM or SIGINT arrives (False) or a worker must be started in place
    of one that died (True)."""
    pause_until = 0.0
    while True:
        if len(started) < workers and time.monotonic() >= pause_until:
            return True
        info = signal.sigtimedwait(_SIGNALS, 1.0)
        if stop_requested(info):
            assert info is not None
            log.info("signal %d: stopping %d worker process(es)", info.si_signo, len(started))
            return False
        for pid, status in _reaped():
            born = started.pop(pid, None)
            if born is None:
                continue
            board.release(pid)
            log.warning("worker process %d %s: starting another", pid, _describe(status))
            if time.monotonic() - born < _QUICK_DEATH_S:
                pause_until = time.monotonic() + _QUICK_DEATH_S


def _stop(started: dict[int, float]) -> None:
    """SIGTERM to every worker (uvicorn's graceful shutdown), then wait; SIGKILL to any still there after the
    graceful timeout and a margin. Returns when every worker has been reaped."""
    for pid in started:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACEFUL_S + _KILL_MARGIN_S
    while started:
        for pid, _status in _reaped():
            started.pop(pid, None)
        if not started:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            for pid in started:
                log.warning("worker process %d did not stop within %d s: killed", pid, GRACEFUL_S + _KILL_MARGIN_S)
                _signal(pid, signal.SIGKILL)
            deadline = float("inf")
            left = 1.0
        signal.sigtimedwait({signal.SIGCHLD}, min(left, 1.0))


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):   # already exited, not yet reaped
        os.kill(pid, sig)


def _reaped() -> list[tuple[int, int]]:
    """The (pid, wait status) of every child that has exited, without blocking."""
    done: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"


if __name__ == "__main__":
    _main(sys.argv)
