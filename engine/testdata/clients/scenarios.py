#!/usr/bin/python3
"""Usage patterns of systems built on ZooKeeper, as a normalized trace.

Usage: scenarios.py host:port

Runs each scenario against the server and prints what its clients saw,
one line per observation, with everything that legitimately differs
between two servers taken out: zxids are printed relative to the
scenario's first write, session ids as the order they were first seen,
times not at all. The same script run against Apache ZooKeeper and
against zkd must print the same lines.
"""
import json
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

HOSTS = sys.argv[1]
sessions = {}
base = [0]


def out(*parts):
    print(" ".join(str(p) for p in parts), flush=True)


def sid(s):
    if s == 0:
        return "none"
    if s not in sessions:
        sessions[s] = "session%d" % (len(sessions) + 1)
    return sessions[s]


def z(x):
    return x - base[0] if x else 0


def stat(st):
    return "version=%d cversion=%d aversion=%d numChildren=%d dataLength=%d owner=%s czxid=%+d mzxid=%+d pzxid=%+d" % (
        st.version, st.cversion, st.aversion, st.numChildren, st.dataLength,
        sid(st.ephemeralOwner), z(st.czxid), z(st.mzxid), z(st.pzxid))


def client():
    c = KazooClient(hosts=HOSTS, timeout=10)
    c.start(timeout=15)
    return c


def begin(zk, name, path):
    out("==", name)
    sessions.clear()
    zk.create(path, b"")
    base[0] = zk.exists(path).czxid


def wait_for(cond, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and not cond():
        time.sleep(0.02)
    return cond()


def err(f):
    try:
        r = f()
        return "ok %r" % (r,)
    except KazooException as e:
        return type(e).__name__


def kafka(zk):
    """Brokers register ephemeral ids; the controller watches the list."""
    begin(zk, "kafka broker registration", "/kafka")
    zk.create("/kafka/brokers/ids", makepath=True)
    seen = []
    changed = threading.Event()

    def watch(event):
        seen.append(event.type + " " + event.path)
        changed.set()

    zk.get_children("/kafka/brokers/ids", watch=watch)
    brokers = []
    for i in range(3):
        b = client()
        reg = json.dumps({"host": "broker%d" % i, "port": 9092 + i, "version": 5}).encode()
        b.create("/kafka/brokers/ids/%d" % i, reg, ephemeral=True)
        brokers.append(b)
    changed.wait(10)
    out("controller saw", seen)
    kids = zk.get_children("/kafka/brokers/ids")
    out("registered", sorted(kids))
    for k in sorted(kids):
        data, st = zk.get("/kafka/brokers/ids/" + k)
        out("broker", k, json.loads(data)["host"], stat(st))
    changed.clear()
    zk.get_children("/kafka/brokers/ids", watch=watch)
    brokers[1].stop()
    brokers[1].close()
    changed.wait(10)
    out("after broker 1 left, controller saw", seen[-1:], sorted(zk.get_children("/kafka/brokers/ids")))
    out("ids stat", stat(zk.exists("/kafka/brokers/ids")))
    # A broker that comes back while its old session lives fails.
    out("re-register 0", err(lambda: brokers[2].create("/kafka/brokers/ids/0", b"", ephemeral=True)))
    for b in (brokers[0], brokers[2]):
        b.stop()
        b.close()
    out("ids at end", zk.get_children("/kafka/brokers/ids"))


def dubbo(zk):
    """Providers register URLs under a service; consumers subscribe."""
    begin(zk, "dubbo registry", "/dubbo")
    svc = "/dubbo/com.example.DemoService"
    zk.ensure_path(svc + "/providers")
    zk.ensure_path(svc + "/consumers")
    consumer = client()
    views = []
    consumer.ChildrenWatch(svc + "/providers", lambda kids: views.append(sorted(kids)))
    providers = []
    for i in range(2):
        p = client()
        url = "dubbo%%3A%%2F%%2F10.0.0.%d%%3A20880%%2Fcom.example.DemoService%%3Fversion%%3D1.0" % (i + 1)
        p.create(svc + "/providers/" + url, ephemeral=True)
        providers.append(p)
    consumer.create(svc + "/consumers/consumer%3A%2F%2F10.0.0.9", ephemeral=True)
    wait_for(lambda: views and len(views[-1]) == 2)
    out("consumer sees", len(views[-1]), "providers")
    providers[0].stop()
    providers[0].close()
    wait_for(lambda: len(views[-1]) == 1)
    out("after provider 1 left, consumer sees", views[-1])
    out("consumers", zk.get_children(svc + "/consumers"))
    providers[1].stop()
    providers[1].close()
    wait_for(lambda: len(views[-1]) == 0)
    out("at end consumer sees", views[-1])
    consumer.stop()
    consumer.close()


def contention(zk):
    """A lock and an election, contended by four clients."""
    begin(zk, "lock and election under contention", "/contend")
    clients = [client() for _ in range(4)]
    inside, most, total = [0], [0], [0]
    guard = threading.Lock()

    def work(c, i):
        for _ in range(10):
            with c.Lock("/contend/lock", "c%d" % i):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.001)
                with guard:
                    inside[0] -= 1
                    total[0] += 1

    ts = [threading.Thread(target=work, args=(c, i)) for i, c in enumerate(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    out("lock held", total[0], "times, never by more than", most[0])
    out("lock nodes left", zk.get_children("/contend/lock"))

    leaders = []
    els = [c.Election("/contend/election", "c%d" % i) for i, c in enumerate(clients)]
    ts = [threading.Thread(target=e.run, args=(lambda i=i: leaders.append(i),)) for i, e in enumerate(els)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    out("every contender led once", sorted(leaders) == [0, 1, 2, 3])
    for c in clients:
        c.stop()
        c.close()


def config(zk):
    """Configuration pushed to watchers with DataWatch."""
    begin(zk, "configuration pushed to watchers", "/config")
    zk.create("/config/app", b"v0")
    watchers = [client() for _ in range(3)]
    seen = [[] for _ in watchers]
    for i, w in enumerate(watchers):
        w.DataWatch("/config/app", lambda data, st, i=i: seen[i].append(data))
    for v in range(1, 6):
        zk.set("/config/app", ("v%d" % v).encode())
        wait_for(lambda: all(s and s[-1] == ("v%d" % v).encode() for s in seen))
    out("every watcher ends on", sorted(set(s[-1] for s in seen)))
    out("config stat", stat(zk.get("/config/app")[1]))
    for w in watchers:
        w.stop()
        w.close()


def errors(zk):
    """Error codes and Stat bookkeeping."""
    begin(zk, "errors and stats", "/err")
    zk.create("/err/a", b"1")
    out("create existing", err(lambda: zk.create("/err/a")))
    out("create under missing", err(lambda: zk.create("/err/x/y")))
    out("set bad version", err(lambda: zk.set("/err/a", b"", version=7)))
    out("delete not empty", err(lambda: zk.delete("/err")))
    out("get missing", err(lambda: zk.get("/err/none")))
    zk.create("/err/e", ephemeral=True)
    out("child of ephemeral", err(lambda: zk.create("/err/e/c")))
    for i in range(3):
        zk.create("/err/s-", sequence=True)
    zk.delete("/err/s-0000000003")
    out("sequential after delete", zk.create("/err/s-", sequence=True))
    out("parent stat", stat(zk.exists("/err")))
    tx = zk.transaction()
    tx.create("/err/t1")
    tx.create("/err/a")
    out("failed transaction", [type(r).__name__ for r in tx.commit()])
    out("t1 after failed transaction", zk.exists("/err/t1") is not None)
    out("set on root quota", err(lambda: zk.set("/zookeeper/config", b"x")))
    out("children of /zookeeper", sorted(zk.get_children("/zookeeper")))


def main():
    zk = client()
    for s in (kafka, dubbo, contention, config, errors):
        s(zk)
    zk.stop()
    zk.close()
    out("== done")


if __name__ == "__main__":
    main()
