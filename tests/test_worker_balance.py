"""The least-connections accept of `dmp serve --workers N` (server._balance), on real sockets: a worker takes a
waiting connection only when it is no busier than the others, leaves it to a less busy one for a bounded time,
and keeps its count on the shared board true as connections close."""

from __future__ import annotations

import os
import socket

import pytest

from server._balance import DEFER_S, BalancedListener, Board


@pytest.fixture
def board():
    b = Board.create(3)
    yield b
    b.close()


@pytest.fixture
def port_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s
    s.close()


def _listener(board: Board, slot: int, shared: socket.socket) -> BalancedListener:
    listener = BalancedListener(board, slot, os.dup(shared.fileno()))
    listener.setblocking(False)   # as asyncio sets it
    return listener


def test_slots_are_claimed_released_and_seen_by_the_others(board):
    assert board.free_slot() == 0
    board.claim(0, 1001)
    board.claim(1, 1002)
    assert board.free_slot() == 2
    board.set_count(0, 5)
    board.set_count(1, 2)
    assert sorted(board.others(2)) == [2, 5]
    assert list(board.others(0)) == [2]
    board.release(1002)
    assert list(board.others(0)) == []   # a released slot counts for nobody
    assert board.free_slot() == 1
    board.claim(2, 1003)
    board.claim(1, 1004)
    with pytest.raises(ValueError, match="every slot"):
        board.free_slot()


def test_the_board_is_shared_with_a_forked_child(board):
    board.claim(0, os.getpid())
    pid = os.fork()
    if pid == 0:
        board.set_count(0, 42)
        os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert list(board.others(1)) == [42]


def test_a_worker_no_busier_than_the_others_accepts_at_once(board, port_socket):
    board.claim(0, 1)
    board.claim(1, 2)
    board.set_count(1, 1)
    mine = _listener(board, 0, port_socket)
    with socket.create_connection(port_socket.getsockname()):
        conn, _ = mine.accept()   # 0 open here, 1 there
        assert list(board.others(1)) == [1]
        conn2_client = socket.create_connection(port_socket.getsockname())
        conn2, _ = mine.accept()  # 1 here, 1 there: equal, taken
        assert list(board.others(1)) == [2]
        conn.close()
        conn2.close()
        conn2_client.close()
    assert list(board.others(1)) == [0]   # closing the accepted connections brings the count back
    mine.close()


def test_a_busier_worker_leaves_the_connection_to_the_other_then_takes_it(board, port_socket):
    board.claim(0, 1)
    board.claim(1, 2)
    board.set_count(1, 0)   # the other worker holds nothing
    mine = _listener(board, 0, port_socket)
    held = []
    first_client = socket.create_connection(port_socket.getsockname())
    held.append(mine.accept()[0])   # 0 vs 0: taken; now 1 vs 0
    with socket.create_connection(port_socket.getsockname()):
        deferrals = 0
        while True:   # as asyncio's accept loop: BlockingIOError = nothing for this worker now, poll again
            try:
                conn, _ = mine.accept()
                break
            except BlockingIOError:
                deferrals += 1
                assert deferrals < 10_000, "never taken"
        held.append(conn)
        # It was left to the other worker first; nobody took it, so this one did, at most DEFER_S later.
        assert deferrals >= 1
        assert deferrals <= 1 + DEFER_S / 0.0001
    assert list(board.others(1)) == [2]
    for c in held:
        c.close()
    first_client.close()
    mine.close()


def test_connections_are_left_to_the_less_busy_of_two_listeners(board, port_socket):
    """Two listeners on one socket, polled in turn like two workers' event loops: every connection goes to the
    one holding fewer, so 8 connections split 4/4 even when the same listener is always asked first."""
    board.claim(0, 1)
    board.claim(1, 2)
    a, b = _listener(board, 0, port_socket), _listener(board, 1, port_socket)
    clients, taken = [], {0: [], 1: []}
    try:
        for _ in range(8):
            clients.append(socket.create_connection(port_socket.getsockname()))
            for slot, listener in ((0, a), (1, b)):
                try:
                    taken[slot].append(listener.accept()[0])
                    break
                except BlockingIOError:
                    continue
        assert (len(taken[0]), len(taken[1])) == (4, 4)
        assert sorted(board.others(2)) == [4, 4]
    finally:
        for conns in taken.values():
            for c in conns:
                c.close()
        for c in clients:
            c.close()
        a.close()
        b.close()


def test_accepted_connections_are_tcp_for_asyncio(board, port_socket):
    """asyncio sets TCP_NODELAY only on accepted sockets whose proto is IPPROTO_TCP (see test_workers)."""
    board.claim(0, 1)
    mine = _listener(board, 0, port_socket)
    with socket.create_connection(port_socket.getsockname()):
        conn, _ = mine.accept()
        assert (conn.family, conn.type, conn.proto) == (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        conn.close()
    mine.close()
