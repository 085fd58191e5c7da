#!/usr/bin/env python3
"""The pull benchmark's physical limit: a minimal HTTP/1.1 server that answers every request
with one file, copied from the page cache into the socket with a 1 MiB buffer (read + send, no
parsing, no hashing, no metadata). curl pulling from it on loopback measures what the machine's
loopback, kernel copies and the client can move, which bounds any registry's blob GET.

Usage: loopback_limit.py FILE PORT   (serves until killed; prints "ready" once listening)
"""

import socket
import sys

BUFFER = 1 << 20


def serve(path, port):
    size = 0
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    print("ready", flush=True)
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    while True:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                head += chunk
            if not head:
                continue
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % size)
            with open(path, "rb", buffering=0) as f:
                while True:
                    n = f.readinto(buf)
                    if not n:
                        break
                    conn.sendall(view[:n])


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
