#!/usr/bin/python3
"""Keep kazoo's Lock and Election recipes busy while an ensemble changes.

Usage: kazoo_rolling.py host:port,host:port,...

Three contenders, each with its own session, take the lock in turn, and
three candidates run the election; whoever holds the lock or leads
creates an ephemeral witness znode for as long as it does, so a second
holder at the same time finds it there. It runs until its standard input
closes, then prints one line,

    kazoo rolling: acquisitions=N leaderships=M violations=V expired=E

and "kazoo rolling ok" when no two held at once and no session expired.
Connection losses while servers come and go are retried, as an
application retries them.
"""
import sys
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (CancelledError, ConnectionLoss, NodeExistsError,
                              NoNodeError, OperationTimeoutError,
                              SessionExpiredError)
from kazoo.retry import KazooRetry

HOSTS = sys.argv[1]
ROOT = "/kazoo-rolling"
stop = threading.Event()
lock = threading.Lock()
elections = []
counts = {"acquisitions": 0, "leaderships": 0, "violations": 0, "expired": 0}


def count(key):
    with lock:
        counts[key] += 1


def client():
    retry = KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5)
    c = KazooClient(hosts=HOSTS, timeout=10, connection_retry=retry, command_retry=retry)

    closing = threading.Event()

    def listener(state):
        # Stopping the client also reports LOST.
        if state == KazooState.LOST and not closing.is_set():
            count("expired")
    c.add_listener(listener)
    c.start(timeout=30)
    c.closing = closing
    return c


def close(c):
    c.closing.set()
    c.stop()
    c.close()


def witness(c, name, who):
    """Holds the witness znode while the caller holds; a violation if
    someone else's is there."""
    path = ROOT + "/" + name
    try:
        c.retry(c.create, path, who.encode(), ephemeral=True)
    except NodeExistsError:
        # Ours when a retried create had gone through before the
        # connection was lost.
        data, _ = c.retry(c.get, path)
        if data != who.encode():
            count("violations")
            print("violation: %s found %s's witness" % (who, data.decode()), flush=True)
            return
    time.sleep(0.02)
    try:
        c.retry(c.delete, path)
    except NoNodeError:
        pass


def contender(i):
    c = client()
    me = "locker-%d" % i
    lk = c.Lock(ROOT + "/lock", me)
    while not stop.is_set():
        try:
            if lk.acquire(timeout=5):
                try:
                    witness(c, "lock-holder", me)
                    count("acquisitions")
                finally:
                    c.retry(lk.release)
        except (ConnectionLoss, OperationTimeoutError, SessionExpiredError):
            time.sleep(0.05)
    close(c)


def candidate(i):
    c = client()
    me = "candidate-%d" % i
    election = c.Election(ROOT + "/election", me)
    with lock:
        elections.append(election)

    def lead():
        witness(c, "leader", me)
        count("leaderships")

    while not stop.is_set():
        try:
            election.run(lead)
        except CancelledError:
            break
        except (ConnectionLoss, OperationTimeoutError, SessionExpiredError):
            time.sleep(0.05)
    close(c)


def main():
    setup = client()
    # Retried as every other call here: a server may drop the connection
    # while the ensemble settles (kazoo retries only what it is asked to).
    setup.retry(setup.ensure_path, ROOT)
    close(setup)
    threads = [threading.Thread(target=contender, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=candidate, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    print("kazoo rolling started", flush=True)
    sys.stdin.read()
    stop.set()
    with lock:
        for e in elections:
            e.cancel()
    for t in threads:
        t.join(60)
    print("kazoo rolling: acquisitions=%(acquisitions)d leaderships=%(leaderships)d "
          "violations=%(violations)d expired=%(expired)d" % counts, flush=True)
    if counts["violations"] == 0 and counts["expired"] == 0 and counts["acquisitions"] > 0 and counts["leaderships"] > 0:
        print("kazoo rolling ok", flush=True)


main()
