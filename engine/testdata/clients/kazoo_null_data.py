"""Null and empty data through kazoo, as kazoo's own test_create_null_data
and test_set_null_data check them, with each of kazoo's handlers: prints
one line per check, then the data of every znode it made, for the test to
compare across a restart."""
import sys

from kazoo.client import KazooClient
from kazoo.handlers.threading import SequentialThreadingHandler

handlers = [("threading", SequentialThreadingHandler)]
try:
    from kazoo.handlers.gevent import SequentialGeventHandler
    handlers.append(("gevent", SequentialGeventHandler))
except ImportError:
    pass
try:
    from kazoo.handlers.eventlet import SequentialEventletHandler
    handlers.append(("eventlet", SequentialEventletHandler))
except ImportError:
    pass

hosts, mode = sys.argv[1], sys.argv[2]
if mode == "write":
    for name, handler in handlers:
        zk = KazooClient(hosts=hosts, handler=handler(), timeout=10)
        zk.start()
        base = "/" + name
        zk.create(base + "-null", None)
        zk.create(base + "-empty", b"")
        zk.create(base + "-set-null", b"x")
        zk.set(base + "-set-null", None)
        zk.create(base + "-set-empty", b"x")
        zk.set(base + "-set-empty", b"")
        zk.create(base + "-made/child", None, makepath=True)
        print("wrote", name)
        zk.stop()
        zk.close()
zk = KazooClient(hosts=hosts, timeout=10)
zk.start()
for child in sorted(zk.get_children("/")):
    if child == "zookeeper":
        continue
    data, stat = zk.get("/" + child)
    print("%s %r length %d" % (child, data, stat.dataLength))
zk.stop()
zk.close()
