"""Drive kazoo through the requests it can send, against the recording proxy."""
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE

server = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:21811"
zk = KazooClient(hosts=server, timeout=10.0, read_only=True)
zk.start()

zk.create("/kazoo", b"root")
zk.create("/kazoo/seq-", b"s", ephemeral=True, sequence=True)
zk.create("/kazoo/c2", b"with stat", include_data=True)  # create2
try:
    zk.create("/kazoo", b"again")
except NodeExistsError:
    pass
zk.get("/kazoo")
try:
    zk.get("/kazoo/missing")
except NoNodeError:
    pass
zk.exists("/kazoo")
zk.exists("/kazoo/missing")
zk.get_children("/kazoo")
zk.get_children("/kazoo", include_data=True)  # getChildren2
zk.set("/kazoo", b"v2")
try:
    zk.set("/kazoo", b"v3", version=99)
except BadVersionError:
    pass
zk.get_acls("/kazoo")
zk.set_acls("/kazoo", OPEN_ACL_UNSAFE + [make_digest_acl("user", "secret", read=True)])
zk.sync("/kazoo")
zk.add_auth("digest", "user:secret")

# Watches fired by later changes.
fired = threading.Event()
zk.get("/kazoo", watch=lambda ev: fired.set())
zk.set("/kazoo", b"v4")
fired.wait(10)
child = threading.Event()
zk.get_children("/kazoo", watch=lambda ev: child.set())
zk.create("/kazoo/later", b"")
child.wait(10)

# A transaction that commits and one that fails on its check.
t = zk.transaction()
t.create("/kazoo/t1", b"t")
t.set_data("/kazoo/t1", b"t2")
t.check("/kazoo/t1", 1)
t.delete("/kazoo/later")
t.commit()
t = zk.transaction()
t.create("/kazoo/t2", b"t")
t.check("/kazoo/t1", 42)
t.delete("/kazoo/t1")
t.commit()

# (No reconfig here: kazoo 2.8 does not know RECONFIGDISABLED, -123, and
# its connection thread dies on it. zkCli.sh covers reconfig.)

# Watches across a reconnect (the proxy drops us after this request).
zk.exists("/kazoo/t1", watch=lambda ev: None)
zk.get_children("/kazoo", watch=lambda ev: None)
reconnected = threading.Event()


def listener(state):
    if state == "CONNECTED":
        reconnected.set()


zk.add_listener(listener)
zk.exists("/zkd-golden-drop")
reconnected.wait(20)
zk.get("/kazoo/t1")
time.sleep(4)  # a ping goes by
zk.delete("/kazoo", recursive=True)
zk.stop()
zk.close()
