"""What both benchmarks share: the test support on sys.path, a node served by a real `dmp serve` process
(the one the tests start, ``tests/support/nodes.py``), and the reading of that process's memory from /proc.

Benchmarks are run as ``.venv/bin/python benchmarks/NAME.py`` from the repository root; sys.path[0] is then
``benchmarks/``, so this module makes ``tests/support/`` (node, factory, client) importable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "tests" / "support", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from nodes import RunningNode, make_node, start_node  # noqa: E402

__all__ = ["RunningNode", "clear_peak_rss", "cpu_seconds", "durable_postgres", "durable_postgres_server", "machine",
           "node_in", "peak_rss_mb", "postgres_cpu_seconds", "process_tree", "pss_mb", "rss_mb", "tree_cpu_seconds",
           "tree_cpu_split", "tree_pss_mb", "tree_rss_mb", "yardstick"]


@contextlib.contextmanager
def node_in(data_dir: Path, *serve_args: str, empty_database_url: str | None = None,
            patients: tuple[str, ...] = (), **config: object) -> Iterator[RunningNode]:
    """A fresh node (SQLite file, or the empty PostgreSQL database ``empty_database_url``, + filesystem blobs in
    ``data_dir``) served by `dmp serve`; the server process is ended by its PID when the block ends, whatever
    happened inside it. ``patients``: those with a DMP the test professional may feed (default: make_node's two).
    ``config`` overrides fields of the node's `Config` (e.g. ``sqlite_synchronous="NORMAL"``)."""
    cfg = (make_node(data_dir, database_url=empty_database_url, patients=patients) if patients
           else make_node(data_dir, database_url=empty_database_url))
    if config:
        cfg = dataclasses.replace(cfg, **config)  # type: ignore[arg-type]
        cfg.save()
    # SIGTERM (and SIGINT where a background shell ignored it) become exceptions, so the finally below runs.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        running = start_node(cfg, *serve_args)
        try:
            yield running
        finally:
            _end(running)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def durable_postgres(*settings: str) -> Iterator[str]:
    """A throwaway PostgreSQL cluster (``tests/support/pg.py``) with durable settings (fsync, synchronous_commit
    and full_page_writes on, unlike the tests' cluster), removed at the end; yields its SQLAlchemy URL.
    ``settings``: more ``name=value`` server settings (e.g. ``shared_preload_libraries=pg_stat_statements``)."""
    with durable_postgres_server(*settings) as server:
        yield server.url


@contextlib.contextmanager
def durable_postgres_server(*settings: str, keep: bool = False) -> Iterator[Any]:
    """As `durable_postgres`, yielding the ``pg.PostgresServer`` itself (its ``url``, ``data`` directory, ...).
    ``keep``: stop the cluster at the end but leave its files (see iti41_throughput.py's ``--keep-files``)."""
    import pg

    server = pg.PostgresServer()
    extra = " ".join(f"-c {setting}" for setting in settings)
    try:
        server._run("pg_ctl", "-D", str(server.data), "-l", str(server.log), "-w", "-t", "60", "start",
                    "-o", f"-c listen_addresses='' -k {server.root} -c fsync=on -c synchronous_commit=on "
                    f"-c full_page_writes=on -c shared_buffers=256MB {extra}")
        yield server
    finally:
        if keep and server.running:
            server.stop()
        elif not keep:
            server.remove()


def yardstick() -> float:
    """Wall seconds of a fixed pure-Python loop (~0.3 s on this VM at its usual speed), timed while nothing else
    of the benchmark runs: this VM's speed drifts by +-25 % over minutes, and a CPU or latency figure taken at a
    slow moment shows it here."""
    t0, x = time.perf_counter(), 0
    for i in range(2_000_000):
        x = (x + i * i) % 1_000_003
    return time.perf_counter() - t0


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU time (user + system) used so far by every process of the PostgreSQL cluster in ``data_dir``: the
    postmaster, its live backends and auxiliary processes, and (through the postmaster's counters of waited-for
    children) the backends that have exited."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for p in process_tree(postmaster):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / tick
    return total


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _end(running: RunningNode) -> None:
    proc = running.process
    if proc.poll() is not None:
        return
    try:
        running.stop(signal.SIGTERM)
    except Exception:  # did not stop in time: it must not outlive the benchmark
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of ``pid`` since it started or since `clear_peak_rss`, in MB."""
    return _status_kb(pid, "VmHWM") / 1024


def rss_mb(pid: int) -> float:
    """Current resident set size (VmRSS) of ``pid``, in MB."""
    return _status_kb(pid, "VmRSS") / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used so far, all its threads together."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU time ``pid`` has used so far, all its threads together (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the worker processes of `dmp serve --workers N`)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its live descendants."""
    return sum(tree_cpu_split(pid))


def tree_cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU time of ``pid`` and its live descendants."""
    user = system = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            u, s = cpu_split(p)
            user, system = user + u, system + s
    return user, system


def tree_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Sum over ``pid`` and its descendants of ``field`` (VmHWM: peak since start or `clear_peak_rss`)."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, RuntimeError):
            total += _status_kb(p, field) / 1024
    return total


def pss_mb(pid: int) -> float:
    """Current proportional set size of ``pid`` (``Pss`` of /proc/PID/smaps_rollup: a page shared by k
    processes, e.g. the code of a shared library or what forked workers share with their parent, counts 1/k in
    each), in MB; 0 if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def tree_pss_mb(pid: int) -> float:
    """Sum of `pss_mb` over ``pid`` and its descendants, i.e. the memory the whole server really holds, in MB."""
    return sum(pss_mb(p) for p in process_tree(pid))


def clear_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/PID/clear_refs``, Linux >= 4.0), so the next reading is
    the peak of one phase (of ``pid`` and its descendants). Returns False where that is not allowed; VmHWM is
    then the peak since start."""
    try:
        for p in process_tree(pid):
            Path(f"/proc/{p}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def machine() -> str:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return (f"{os.cpu_count()} cores, {mem_kb / 1024**2:.0f} GiB, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, load average {os.getloadavg()[0]:.2f} at start")
