#!/usr/bin/env python3
"""connect_proxy.py — a minimal HTTPS proxy (HTTP CONNECT tunnels) for tests.

Listens on 127.0.0.1 (any free port), writes its port to PORTFILE once it
accepts, and appends one line per tunnel to LOGFILE: "CONNECT host:port".
Tunnels only to loopback names (localhost, *.localhost, 127.0.0.1): it is a
test fixture, not a proxy.  Exits when process PID is gone.

    connect_proxy.py PORTFILE LOGFILE PID
"""
import os
import select
import socket
import sys
import threading
import time


def tunnel(client, log):
    try:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, target, _ = line.split(" ", 2)
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or not (host in ("localhost", "127.0.0.1")
                                       or host.endswith(".localhost")):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with open(log, "a") as f:
            f.write("CONNECT %s\n" % target)
        upstream = socket.create_connection(("127.0.0.1", int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pair = {client: upstream, upstream: client}
        while True:
            ready, _, _ = select.select(list(pair), [], [], 60)
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                pair[s].sendall(data)
    except (OSError, ValueError):
        pass
    finally:
        client.close()


def main():
    portfile, log, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    server.settimeout(1)
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        threading.Thread(target=tunnel, args=(client, log), daemon=True).start()


if __name__ == "__main__":
    main()
