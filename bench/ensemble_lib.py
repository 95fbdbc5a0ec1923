# ensemble_lib.py: what the Python parts of bench/catchup.sh and
# bench/failover.sh share.
import socket
import struct


def srvr(host, port, timeout=2):
    """The srvr answer of host:port as a dict ("Mode", "Zxid", ...); {}
    when the server is down or says nothing."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        s.sendall(b"srvr")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        return dict(l.split(": ", 1) for l in out.decode().split("\n") if ": " in l)
    except OSError:
        return {}


def _frame(b):
    return struct.pack(">i", len(b)) + b


def _read_frame(s):
    def exactly(n):
        out = b""
        while len(out) < n:
            d = s.recv(n - len(out))
            if not d:
                raise OSError("closed")
            out += d
        return out
    (n,) = struct.unpack(">i", exactly(4))
    return exactly(n)


def create(host, port, path, timeout=0.5):
    """Creates path (a persistent znode, no data, open ACL) in a new
    session on host:port over the client protocol; True once the server
    acknowledged it, False on any failure."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        s.settimeout(timeout)
        # ConnectRequest: protocol, last zxid seen, timeout, session, password, read-only.
        s.sendall(_frame(struct.pack(">iqiqi", 0, 0, 4000, 0, 16) + b"\0" * 16 + b"\0"))
        resp = _read_frame(s)
        if struct.unpack(">i", resp[4:8])[0] <= 0:
            return False
        p = path.encode()
        acl = struct.pack(">ii", 1, 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"
        body = struct.pack(">ii", 1, 1) + struct.pack(">i", len(p)) + p + struct.pack(">i", -1) + acl + struct.pack(">i", 0)
        s.sendall(_frame(body))
        while True:
            reply = _read_frame(s)
            xid, _, err = struct.unpack(">iqi", reply[:16])
            if xid == 1:
                s.close()
                return err == 0
    except (OSError, struct.error):
        return False
