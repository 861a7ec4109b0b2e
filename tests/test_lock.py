"""Per-run locks: one holder at a time, dead holders taken over by exactly one worker, fencing."""

import json
import multiprocessing
import os
import subprocess
import sys
import time

from helpers.study.lock import Busy, RunLock, work_through


def write_lock(folder, key, gen, **owner):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.{gen:06d}.lock"
    path.write_text(json.dumps(owner))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid is gone
    return proc.pid


def test_one_holder_at_a_time_and_release(tmp_path):
    first, second = RunLock(tmp_path, "k"), RunLock(tmp_path, "k")
    assert first.acquire()
    assert not second.acquire()  # our own process is alive: the lock is live
    info = json.loads(first.path.read_text())
    assert info["pid"] == os.getpid() and info["host"]
    first.release()
    assert not list(tmp_path.iterdir())
    assert second.acquire()
    second.release()


def test_dead_holder_on_this_host_is_taken_over(tmp_path):
    import socket

    stale = write_lock(tmp_path, "k", 0, host=socket.gethostname(), pid=dead_pid())
    lock = RunLock(tmp_path, "k")
    assert lock.acquire()
    assert lock.path.name == "k.000001.lock" and not stale.exists()
    lock.release()


def test_other_host_counts_by_heartbeat(tmp_path):
    path = write_lock(tmp_path, "k", 0, host="elsewhere", pid=1)
    assert not RunLock(tmp_path, "k", stale_after=60).acquire()  # fresh heartbeat: live
    old = time.time() - 120
    os.utime(path, (old, old))
    lock = RunLock(tmp_path, "k", stale_after=60)
    assert lock.acquire()  # no heartbeat for two minutes: dead
    lock.release()


def test_fencing_after_a_takeover(tmp_path):
    holder = RunLock(tmp_path, "k", stale_after=60)
    assert holder.acquire()
    holder._stop.set()  # a holder that froze: no more heartbeats, file seen from "another host"
    record = json.loads(holder.path.read_text())
    holder.path.write_text(json.dumps({**record, "host": "elsewhere"}))
    old = time.time() - 120
    os.utime(holder.path, (old, old))
    taker = RunLock(tmp_path, "k", stale_after=60)
    assert taker.acquire()
    assert not holder.still_held() and taker.still_held()
    holder.release()  # must not remove the taker's lock
    assert taker.path.exists()
    taker.release()


def _race(folder, start, out):
    start.wait()
    lock = RunLock(folder, "k")
    out.put(lock.acquire())
    time.sleep(0.5)  # hold it while the others try


def test_exactly_one_of_many_takes_over_a_dead_lock(tmp_path):
    import socket

    write_lock(tmp_path, "k", 0, host=socket.gethostname(), pid=dead_pid())
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(tmp_path, start, out)) for _ in range(6)]
    for p in procs:
        p.start()
    start.set()
    wins = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join()
    assert sum(wins) == 1


def test_busy_items_are_retried_until_done():
    calls = []

    def do(item):
        calls.append(item)
        if item == "b" and calls.count("b") < 3:
            raise Busy("held elsewhere")
        return item.upper()

    lines = []
    done, pending = work_through(["a", "b", "c"], do, poll=0.01, log=lines.append)
    assert done == {"a": "A", "b": "B", "c": "C"} and pending == []
    assert lines == ["waiting for 1 run(s) held by other workers ..."]  # once, not per poll
    done, pending = work_through(["b"], lambda i: (_ for _ in ()).throw(Busy()), wait=False)
    assert done == {} and pending == ["b"]
