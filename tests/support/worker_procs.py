"""Which process of a `dmp serve --workers N` holds what: its workers, and the one serving a client's
connection (read from /proc: the connection's socket inode in /proc/net/tcp, then the process whose file
descriptors hold it)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from nodes import RunningNode


def workers_of(node: RunningNode) -> set[int]:
    """The worker processes below the node's supervisor."""
    return descendants(node.process.pid) - {node.process.pid}


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (the workers of `dmp serve --workers N`)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo += children.get(p, [])
    return found


def serving_process(server_pid: int, server_port: int, client_port: int) -> int:
    """The process holding the server side of the TCP connection 127.0.0.1:client_port -> server_port."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    inodes = {fields[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
              if (fields := line.split())[1] == local and fields[2] == remote}
    assert len(inodes) == 1, inodes
    target = f"socket:[{inodes.pop()}]"
    for pid in descendants(server_pid):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no process of the server holds {target}")


def client_port(response: httpx.Response) -> int:
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])
