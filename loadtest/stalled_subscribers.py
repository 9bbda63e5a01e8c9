#!/usr/bin/env python3
"""Kernel memory held for subscribers that stop reading: N subscribers of one topic never read,
a publisher sends E events of B bytes, and the script prints the TCP memory of the machine
(/proc/net/sockstat) and the server's own sockets (ss: bytes queued to send) before and after.

    python3 loadtest/stalled_subscribers.py --port PORT --subscribers 300 --events 200 --bytes 65536

Run the server with --max-connections-per-ip 0 --keep-alive 5m, so that no stalled subscriber
is dropped during the run. It stops by itself.
"""
import argparse
import json
import socket
import subprocess
import time
import urllib.request

PAGE = 4096


def tcp_memory_bytes():
    with open("/proc/net/sockstat") as sockstat:
        for line in sockstat:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1]) * PAGE
    raise SystemExit("no TCP line in /proc/net/sockstat")


def server_send_queues(port):
    """Bytes the server's sockets hold queued to send (Send-Q), summed."""
    out = subprocess.run(
        ["ss", "-tnH", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=True,
    ).stdout
    return sum(int(line.split()[1]) for line in out.splitlines() if line.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subscribers", type=int, default=300)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--bytes", type=int, default=65536)
    args = parser.parse_args()

    base = f"http://127.0.0.1:{args.port}"
    before = tcp_memory_bytes()
    stalled = []
    for _ in range(args.subscribers):
        conn = socket.create_connection(("127.0.0.1", args.port))
        conn.sendall(b"GET /events?topic=stalled HTTP/1.1\r\nHost: t\r\n\r\n")
        stalled.append(conn)
    time.sleep(1)
    data = "x" * args.bytes
    started = time.monotonic()
    for n in range(args.events):
        body = json.dumps({"topic": "stalled", "data": data}).encode()
        request = urllib.request.Request(
            f"{base}/publish", body, {"content-type": "application/json"}
        )
        urllib.request.urlopen(request).read()
    took = time.monotonic() - started
    time.sleep(2)
    after = tcp_memory_bytes()
    queued = server_send_queues(args.port)
    n = args.subscribers
    print(f"published {args.events} x {args.bytes} B in {took:.2f} s")
    print(f"machine TCP memory: {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after "
          f"({(after - before) / n / 1024:.1f} KiB per stalled subscriber, both ends)")
    print(f"server send queues: {queued / 2**20:.1f} MiB ({queued / n / 1024:.1f} KiB per "
          f"stalled subscriber)")
    for conn in stalled:
        conn.close()


if __name__ == "__main__":
    main()
