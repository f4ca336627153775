"""Run a function in a worker process under a hard time limit.

Tools such as the equation solver call into libraries (sympy) that cannot be interrupted from
a thread, so the only way to really stop a runaway computation is to run it in another process
and kill that process. This module keeps a few warm worker processes so that a call costs a
pipe round trip (about a millisecond) rather than a process start; a worker that is killed on
timeout is simply replaced by a fresh one on the next call.

On POSIX a worker is started with :mod:`subprocess` (``python -c …``), not with
:mod:`multiprocessing`, so the caller's ``__main__`` module is never re-imported in the child
(a script without an ``if __name__ == "__main__":`` guard keeps working). Elsewhere the
``spawn`` multiprocessing context is used.

The time limit counts the work only: a worker first acknowledges that it has unpickled the
call (which may import modules), then the clock starts.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

__all__ = ["WorkerCrashedError", "run_with_time_limit", "shutdown_workers", "warm_up"]

T = TypeVar("T")

_STARTUP_TIMEOUT_S = 60.0
"""How long a new worker may take to start and unpickle a call (imports included)."""
_MAX_IDLE_WORKERS = 2
"""Warm workers kept between calls."""
_MEMORY_LIMIT_BYTES = 2 * 1024**3
"""Address-space limit of a worker (POSIX only), so a runaway computation fails with MemoryError."""

_ACK = "started"


class WorkerCrashedError(RuntimeError):
    """The worker process died (killed by the OS, out of memory) before returning a result."""


def _limit_memory(limit_bytes: int) -> None:
    try:
        import resource
    except ImportError:  # not POSIX
        return
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    except (ValueError, OSError):
        pass


def _serve(recv: Callable[[], Any], send: Callable[[Any], None], preload: Iterable[str] = ()) -> None:
    """Worker loop: receive ``(fn, args)``, acknowledge, run, send ``(ok, value)``."""
    import importlib
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    _limit_memory(_MEMORY_LIMIT_BYTES)
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    while True:
        try:
            fn, args, modules = recv()
            for name in modules:
                importlib.import_module(name)
        except EOFError:
            return
        except BaseException as error:  # noqa: BLE001 - an unpicklable call is reported, not fatal
            send(_ACK)
            send((False, RuntimeError(f"cannot unpickle the call: {error!r}")))
            continue
        send(_ACK)
        try:
            result: tuple[bool, Any] = (True, fn(*args))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the caller
            result = (False, error)
        try:
            send(result)
        except Exception as error:  # the result or the exception could not be pickled
            send((False, RuntimeError(f"cannot pickle the result: {error!r}")))


def _serve_fds(read_fd: int, write_fd: int, preload: Iterable[str] = ()) -> None:
    """Entry point of a POSIX worker started with ``python -c``."""
    reader = Connection(read_fd, writable=False)
    writer = Connection(write_fd, readable=False)
    _serve(reader.recv, writer.send, preload)


def _serve_conn(conn: Connection, preload: Iterable[str] = ()) -> None:
    """Entry point of a worker started with multiprocessing."""
    _serve(conn.recv, conn.send, preload)


class _Worker:
    """One worker process and the two ends of its pipes."""

    def __init__(self, preload: Iterable[str] = ()) -> None:
        preload = list(preload)
        self.owner_pid = os.getpid()
        self.recv_conn: Connection
        self.send_conn: Connection
        if os.name == "posix":
            parent_read, child_write = os.pipe()
            child_read, parent_write = os.pipe()
            code = (
                "from moss_agent.tools._limits import _serve_fds; "
                f"_serve_fds({child_read}, {child_write}, {preload!r})"
            )
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
            try:
                self.process: Any = subprocess.Popen(
                    [sys.executable, "-c", code],
                    pass_fds=(child_read, child_write),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    env=env,
                )
            except BaseException:
                os.close(parent_read)
                os.close(parent_write)
                raise
            finally:
                os.close(child_read)
                os.close(child_write)
            self.recv_conn = Connection(parent_read, writable=False)
            self.send_conn = Connection(parent_write, readable=False)
        else:  # pragma: no cover - exercised on Windows only
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            parent_conn, child_conn = context.Pipe()
            self.process = context.Process(target=_serve_conn, args=(child_conn, preload), daemon=True)
            self.process.start()
            child_conn.close()
            self.recv_conn = self.send_conn = parent_conn

    def is_alive(self) -> bool:
        if isinstance(self.process, subprocess.Popen):
            return self.process.poll() is None
        return bool(self.process.is_alive())  # pragma: no cover - Windows

    def kill(self) -> None:
        try:
            self.process.kill()
        except OSError:
            pass
        if isinstance(self.process, subprocess.Popen):
            self.process.wait()
        else:  # pragma: no cover - Windows
            self.process.join()
        self.close_pipes()

    def close_pipes(self) -> None:
        for conn in {id(self.recv_conn): self.recv_conn, id(self.send_conn): self.send_conn}.values():
            try:
                conn.close()
            except OSError:
                pass

    def call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float, preload: Sequence[str]
    ) -> tuple[bool, Any]:
        self.send_conn.send((fn, args, tuple(preload)))
        if not self.recv_conn.poll(_STARTUP_TIMEOUT_S):
            raise TimeoutError("the worker process did not start in time")
        if self.recv_conn.recv() != _ACK:
            raise WorkerCrashedError("unexpected message from the worker process")
        if not self.recv_conn.poll(max(timeout, 0.0)):
            raise TimeoutError(f"no result within {timeout:g} s")
        outcome: tuple[bool, Any] = self.recv_conn.recv()
        return outcome


_lock = threading.Lock()
_idle: list[_Worker] = []


def _take_worker() -> _Worker:
    while True:
        with _lock:
            if not _idle:
                return _Worker()
            worker = _idle.pop()
        if worker.owner_pid == os.getpid() and worker.is_alive():
            return worker
        if worker.owner_pid == os.getpid():  # it died while idle (e.g. the OOM killer)
            worker.kill()
        # else: inherited through fork(); its pipes belong to the parent process


def _return_worker(worker: _Worker) -> None:
    with _lock:
        if len(_idle) < _MAX_IDLE_WORKERS:
            _idle.append(worker)
            return
    worker.kill()


def run_with_time_limit(fn: Callable[..., T], *args: Any, timeout: float, preload: Sequence[str] = ()) -> T:
    """Call ``fn(*args)`` in a worker process and kill the process if it runs too long.

    Args:
        fn: A picklable function: defined at the top level of an importable module.
        *args: Picklable arguments.
        timeout: Seconds the call may run, not counting the worker's start-up.
        preload: Modules to import before the clock starts (slow imports such as ``"sympy"``).

    Returns:
        What ``fn`` returned.

    Raises:
        TimeoutError: The call did not finish in time; its worker was killed.
        WorkerCrashedError: The worker process died during the call.
        Exception: Whatever ``fn`` raised, re-raised here.
    """
    worker = _take_worker()
    try:
        ok, value = worker.call(fn, args, timeout, preload)
    except TimeoutError:
        worker.kill()
        raise
    except (EOFError, OSError) as error:
        worker.kill()
        raise WorkerCrashedError("the worker process exited unexpectedly") from error
    except BaseException:  # e.g. KeyboardInterrupt: the worker may still be busy
        worker.kill()
        raise
    _return_worker(worker)
    if not ok:
        raise value
    return value


def warm_up(preload: Iterable[str] = ()) -> None:
    """Start a worker now, so that the first timed call does not wait for a process start.

    Args:
        preload: Modules the worker imports at once, e.g. ``("sympy",)``.
    """
    with _lock:
        if len(_idle) >= _MAX_IDLE_WORKERS:
            return
    _return_worker(_Worker(preload))


@atexit.register
def shutdown_workers() -> None:
    """Stop the idle worker processes (they are started again when needed)."""
    with _lock:
        workers, _idle[:] = list(_idle), []
    for worker in workers:
        if worker.owner_pid != os.getpid():  # inherited through fork(): not ours to stop
            continue
        worker.close_pipes()  # the worker sees EOF and exits
        deadline = time.monotonic() + 1.0
        while worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if worker.is_alive():
            worker.kill()
