#!/usr/bin/env python3
"""A spike of pending heads: open N connections that each send half a request head, hold them,
close them all, and print the server's RssAnon before, at the peak and after the close.

    python3 loadtest/pending_heads.py --port PORT --pid PID --connections 15000

Run the server with --max-connections-per-ip 0 (every connection comes from 127.0.0.1) and
give this process an open-file limit above N (ulimit -n 20000). It stops by itself.
"""
import argparse
import socket
import time


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise SystemExit(f"no RssAnon for pid {pid}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--connections", type=int, default=15000)
    parser.add_argument("--hold", type=float, default=1.0, help="seconds to hold them")
    args = parser.parse_args()

    print(f"before          {rss_anon_kib(args.pid):>8} KiB")
    held = []
    try:
        for _ in range(args.connections):
            conn = socket.create_connection(("127.0.0.1", args.port))
            conn.sendall(b"GET /events?topic=x HTTP/1.1\r\n")
            held.append(conn)
        time.sleep(args.hold)
        print(f"at the peak     {rss_anon_kib(args.pid):>8} KiB  ({len(held)} pending heads)")
    finally:
        for conn in held:
            conn.close()
    closed = time.monotonic()
    for after in (1, 5, 10):
        time.sleep(max(0.0, closed + after - time.monotonic()))
        print(f"{after:>2} s after close {rss_anon_kib(args.pid):>8} KiB")


if __name__ == "__main__":
    main()
