# ensemble_lib.py: what the Python parts of bench/catchup.sh and
# bench/failover.sh share.
import socket


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
