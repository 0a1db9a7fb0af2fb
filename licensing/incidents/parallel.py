"""Reading a large import in a second process, so that it overlaps the inserts.

A big import spends about a third of its time reading, checking, deduplicating and
numbering rows and two thirds in the database. With two cores, a child forked from the
importer does the first part and hands the parent ready-to-bind statement parameters
through a pipe, while the parent, which alone holds the database connection and the
transaction, only executes them. (A thread cannot do this: the GIL serialises the two
halves, and a writer thread was measured slower than one thread.)

fork(), not spawn: the child starts at once with the file, the premises grid and the
references already held, without copying them through the pipe. It touches nothing else
(never the database connection), runs with the garbage collector off so that no
inherited object is finalised in it, and leaves with os._exit().
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import os
import pickle  # only ever from our own forked child  # nosec B403
import signal
import struct
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO, NoReturn, TypeVar

# Files of fewer lines are read in the importer's own process: the fork, the hand-over and
# the look at the CPUs cost more than the overlap saves (measured: 25,000 rows gained
# 0.04 s, 50,000 rows 0.22 s, on two cores).
MIN_LINES = 50_000
# A second process pays only with about a core and a half idle: the child needs about
# half the parent's CPU time, and less than a whole free core was measured to lose.
_FREE_CORES = 1.5
_SAMPLE_SECONDS = 0.1
_PIPE_BYTES = 1 << 20  # Linux's default ceiling for an unprivileged process
_HEADER = struct.Struct("<cQ")  # message kind, payload length
_BATCH, _DONE, _FAILED = b"B", b"D", b"F"

T = TypeVar("T")
Send = Callable[[Any], None]


class ChildFailed(RuntimeError):
    """The reading process ended without saying why (it was killed, or ran out of memory)."""


def worthwhile(lines: int) -> bool:
    """Whether a file of `lines` lines is read faster in a second process here: it is
    large enough, and a core is free to read it on. The kernel shares CPU time between
    sessions, not processes, so on a machine where something else keeps a core busy the
    two processes only split the time one would get, and the hand-over adds work: then
    the file is read here."""
    return lines >= MIN_LINES and can_fork() and free_cores() >= _FREE_CORES


def free_cores() -> float:
    """About how many of this process's cores are idle now: measured over a tenth of a
    second from /proc/stat (Linux); elsewhere, the cores less the load average."""
    mine = _allowed_cpus()
    try:
        before = _busy_ticks(mine)
        time.sleep(_SAMPLE_SECONDS)
        busy = (_busy_ticks(mine) - before) / os.sysconf("SC_CLK_TCK") / _SAMPLE_SECONDS
    except (OSError, ValueError):
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average either: assume a quiet machine
            busy = 0.0
    return len(mine) - busy


def _busy_ticks(cpus: set[int]) -> int:
    """Clock ticks the given CPUs have spent busy since boot (all but idle and iowait)."""
    total = 0
    with open("/proc/stat") as stat:
        for line in stat:
            name, *ticks = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                values = [int(t) for t in ticks[:8]]
                total += sum(values) - values[3] - values[4]
    return total


def _allowed_cpus() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def cores() -> int:
    """The cores this process may run on."""
    return len(_allowed_cpus())


def can_fork() -> bool:
    """Whether this system can start a second process by fork() at all."""
    return hasattr(os, "fork")


def run_in_child(produce: Callable[[Send], T], consume: Callable[[Any], None]) -> T:
    """Run `produce(send)` in a forked child; pass each batch it sends to `consume` here,
    in order, and return what `produce` returned.

    Batches are marshalled, so they hold only built-in values (lists, tuples, str, float,
    int, None). What `produce` raises is raised here. If `consume` raises, or anything
    else stops the parent reading, the child is killed: it never outlives the call.
    """
    read_end, write_end = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or over the user's limit
        pass
    collecting = gc.isenabled()
    gc.disable()  # the child inherits it off; see the module docstring
    try:
        pid = os.fork()
    except BaseException:
        if collecting:
            gc.enable()
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:
        _child(produce, read_end, write_end)
    if collecting:
        gc.enable()
    os.close(write_end)
    finished = False
    try:
        with open(read_end, "rb", buffering=_PIPE_BYTES) as pipe:
            while True:
                kind, payload = _receive(pipe)
                if kind == _BATCH:
                    consume(marshal.loads(payload))  # noqa: S302 (our own child)  # nosec B302
                    continue
                finished = True
                message = pickle.loads(payload)  # noqa: S301 (our own child)  # nosec B301
                if kind == _DONE:
                    return message
                raise message
    finally:
        if not finished:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: already reaped
            os.waitpid(pid, 0)


def _receive(pipe: BinaryIO) -> tuple[bytes, bytes]:
    """One message from the child: its kind and payload."""
    header = pipe.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise ChildFailed("the process reading the file ended without finishing")
    kind, length = _HEADER.unpack(header)
    payload = pipe.read(length)
    if len(payload) < length:
        raise ChildFailed("the process reading the file ended without finishing")
    return kind, payload


def _child(produce: Callable[[Send], Any], read_end: int, write_end: int) -> NoReturn:
    """The forked child: run `produce`, send its batches, its result or its failure, and
    leave without running any clean-up inherited from the parent."""
    code = 1
    try:
        os.close(read_end)
        with open(write_end, "wb", buffering=_PIPE_BYTES) as pipe:

            def send_message(kind: bytes, payload: bytes) -> None:
                pipe.write(_HEADER.pack(kind, len(payload)))
                pipe.write(payload)
                pipe.flush()

            def send(batch: Any) -> None:
                send_message(_BATCH, marshal.dumps(batch))

            try:
                kind, message = _DONE, produce(send)
            except BaseException as error:  # everything goes back to the parent to raise
                kind, message = _FAILED, _portable(error)
            send_message(kind, pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        code = 0
    except BaseException:  # noqa: S110 (the parent has gone: nobody to tell)  # nosec B110
        pass
    finally:
        os._exit(code)


def _portable(error: BaseException) -> BaseException:
    """The child's exception, with its traceback as a note, in a form that survives
    pickling (else a RuntimeError saying what it was)."""
    where = "".join(traceback.format_exception(error))
    try:
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own object)  # nosec B301
    except Exception:
        copy = RuntimeError(f"{type(error).__name__}: {error}")
    copy.add_note("raised while reading the file in a second process:\n" + where)
    return copy
