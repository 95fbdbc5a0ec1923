#!/usr/bin/python3
"""Drive a ZooKeeper-compatible server with kazoo and its recipes.

Usage: kazoo_recipes.py host:port

Each check prints "ok <name>"; the first failure raises and the script
exits non-zero. The checks are the recipes the systems that use ZooKeeper
rely on: Lock, Election, Queue, LockingQueue, Counter, Barrier, DataWatch
and ChildrenWatch, plus plain CRUD, ephemerals and transactions.
"""
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError, BadVersionError

HOSTS = sys.argv[1]
ROOT = "/kazoo-recipes"


def client():
    c = KazooClient(hosts=HOSTS, timeout=10)
    c.start(timeout=15)
    return c


def ok(name):
    print("ok", name, flush=True)


def wait_for(cond, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def crud(zk):
    zk.ensure_path(ROOT + "/crud")
    zk.create(ROOT + "/crud/a", b"1")
    try:
        zk.create(ROOT + "/crud/a", b"2")
        raise AssertionError("create of an existing node succeeded")
    except NodeExistsError:
        pass
    data, stat = zk.get(ROOT + "/crud/a")
    assert data == b"1" and stat.version == 0, (data, stat)
    zk.set(ROOT + "/crud/a", b"2", version=0)
    try:
        zk.set(ROOT + "/crud/a", b"3", version=0)
        raise AssertionError("set with a stale version succeeded")
    except BadVersionError:
        pass
    seq = [zk.create(ROOT + "/crud/s-", sequence=True) for _ in range(3)]
    assert seq == [ROOT + "/crud/s-%010d" % i for i in range(1, 4)], seq
    tx = zk.transaction()
    tx.create(ROOT + "/crud/t1", b"x")
    tx.set_data(ROOT + "/crud/a", b"4")
    tx.delete(ROOT + "/crud/s-0000000001")
    results = tx.commit()
    assert results[0] == ROOT + "/crud/t1", results
    assert zk.get(ROOT + "/crud/a")[0] == b"4"
    zk.delete(ROOT + "/crud", recursive=True)
    try:
        zk.get(ROOT + "/crud")
        raise AssertionError("deleted node still there")
    except NoNodeError:
        pass
    ok("crud")


def ephemerals():
    a, b = client(), client()
    a.create(ROOT + "/eph", b"", ephemeral=True)
    # b may be on another server, which may not have the create yet: its
    # exists would then watch for the create, and that event would be
    # taken for the delete.
    b.sync(ROOT + "/eph")
    gone = threading.Event()
    assert b.exists(ROOT + "/eph", watch=lambda ev: ev.type == "DELETED" and gone.set()) is not None
    a.stop()
    a.close()
    assert gone.wait(10), "no watch event when the ephemeral's session closed"
    assert b.exists(ROOT + "/eph") is None
    b.stop()
    b.close()
    ok("ephemerals")


def lock():
    clients = [client() for _ in range(3)]
    holders, lock_ = [], threading.Lock()
    inside = [0]

    def worker(zk, i):
        for _ in range(5):
            with zk.Lock(ROOT + "/lock", "w%d" % i):
                with lock_:
                    inside[0] += 1
                    assert inside[0] == 1, "two holders of one lock"
                holders.append(i)
                time.sleep(0.002)
                with lock_:
                    inside[0] -= 1

    ts = [threading.Thread(target=worker, args=(c, i)) for i, c in enumerate(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(holders) == 15, holders
    for c in clients:
        c.stop()
        c.close()
    ok("Lock")


def election():
    clients = [client() for _ in range(3)]
    leaders = []
    done = threading.Event()

    def lead(i):
        leaders.append(i)
        done.wait(0.2)

    elections = [c.Election(ROOT + "/election", "c%d" % i) for i, c in enumerate(clients)]
    ts = [threading.Thread(target=e.run, args=(lead, i)) for i, e in enumerate(elections)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(leaders) == [0, 1, 2], leaders
    for c in clients:
        c.stop()
        c.close()
    ok("Election")


def queue(zk):
    q = zk.Queue(ROOT + "/queue")
    for i in range(10):
        q.put(str(i).encode())
    got = [q.get() for _ in range(10)]
    assert got == [str(i).encode() for i in range(10)], got
    assert q.get() is None
    ok("Queue")

    lq = zk.LockingQueue(ROOT + "/lqueue")
    lq.put(b"low", priority=50)
    lq.put(b"high", priority=10)
    first = lq.get(timeout=5)
    assert first == b"high", first
    assert lq.consume()
    assert lq.get(timeout=5) == b"low"
    assert lq.consume()
    ok("LockingQueue")


def counter():
    clients = [client() for _ in range(3)]

    def bump(zk):
        c = zk.Counter(ROOT + "/counter")
        for _ in range(20):
            c += 1

    ts = [threading.Thread(target=bump, args=(c,)) for c in clients]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    # The clients may be on different servers: a read sees every other
    # client's increments only once its server has them, which sync makes
    # sure of (a busy follower can be a few txns behind).
    clients[0].sync(ROOT + "/counter")
    value = clients[0].Counter(ROOT + "/counter").value
    assert value == 60, value
    for c in clients:
        c.stop()
        c.close()
    ok("Counter")


def barrier(zk):
    b = zk.Barrier(ROOT + "/barrier")
    b.create()
    released = threading.Event()

    def waiter():
        other = client()
        # On another server the barrier shows once that server has it.
        other.sync(ROOT + "/barrier")
        other.Barrier(ROOT + "/barrier").wait(20)
        released.set()
        other.stop()
        other.close()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    assert not released.is_set(), "the barrier let a waiter through while it stood"
    b.remove()
    assert released.wait(10), "removing the barrier released no one"
    t.join()

    db = zk.DoubleBarrier(ROOT + "/double", 2)
    other = client()
    db2 = other.DoubleBarrier(ROOT + "/double", 2)
    t = threading.Thread(target=db2.enter)
    t.start()
    db.enter()
    t.join(10)
    t = threading.Thread(target=db2.leave)
    t.start()
    db.leave()
    t.join(10)
    other.stop()
    other.close()
    ok("Barrier")


def watches(zk):
    zk.ensure_path(ROOT + "/dw")
    seen = []
    zk.DataWatch(ROOT + "/dw", lambda data, stat: seen.append(data))
    for i in range(3):
        zk.set(ROOT + "/dw", str(i).encode())
        wait_for(lambda: seen[-1:] == [str(i).encode()], "DataWatch to see %d" % i)
    zk.delete(ROOT + "/dw")
    wait_for(lambda: seen[-1] is None, "DataWatch to see the delete")
    ok("DataWatch")

    zk.ensure_path(ROOT + "/cw")
    kids = []
    zk.ChildrenWatch(ROOT + "/cw", lambda children: kids.append(sorted(children)))
    for name in ["a", "b", "c"]:
        zk.create(ROOT + "/cw/" + name)
    wait_for(lambda: kids and kids[-1] == ["a", "b", "c"], "ChildrenWatch to see a, b, c")
    zk.delete(ROOT + "/cw/b")
    wait_for(lambda: kids[-1] == ["a", "c"], "ChildrenWatch to see b go")
    ok("ChildrenWatch")


def main():
    zk = client()
    zk.delete(ROOT, recursive=True) if zk.exists(ROOT) else None
    zk.ensure_path(ROOT)
    crud(zk)
    ephemerals()
    lock()
    election()
    queue(zk)
    counter()
    barrier(zk)
    watches(zk)
    zk.delete(ROOT, recursive=True)
    zk.stop()
    zk.close()
    print("all kazoo checks passed", flush=True)


if __name__ == "__main__":
    main()
