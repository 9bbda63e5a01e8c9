#!/usr/bin/env python3
"""Subscribes to ssecast topics and prints every event, resuming after a dropped connection.

Shows an SSE client in Python (httpx with httpx-sse) doing what a browser's EventSource does by
itself: when the stream ends or the connection drops, it reconnects with a `Last-Event-ID`
header, and ssecast replays what was published meanwhile from its history, so nothing is missed
and nothing is printed twice. When history cannot fill in (the server restarted, or the client was
away too long), the stream starts with a `gap` event, which this script reports.

Run:
    python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt
    .venv/bin/python examples/subscribe.py news sport      # Ctrl-C or SIGTERM stops it
The server is SSECAST_URL, by default http://127.0.0.1:8080. Each event is one line on stdout,
`<id> <event type> <data>` (data with newlines spans several lines); news about the connection
goes to stderr.
"""

import json
import os
import signal
import sys
import time

import httpx
from httpx_sse import SSEError, connect_sse

# ssecast sends a comment after --keep-alive (15 s by default) of silence, so a minute without
# a byte means the connection is dead even if no one said so.
READ_TIMEOUT = 60.0
# Reconnect after this many seconds, doubling while attempts fail, up to RETRY_MAX. A `retry`
# field from the server replaces the first delay, as it does in a browser.
RETRY_FIRST = 0.5
RETRY_MAX = 10.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def subscribe(url: str, topics: list[str]) -> int:
    params = [("topic", topic) for topic in topics]
    last_id = ""  # the id of the last event printed; sent as Last-Event-ID to resume
    first_delay = RETRY_FIRST
    delay = first_delay
    timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                with connect_sse(client, "GET", url, params=params, headers=headers) as source:
                    status = source.response.status_code
                    if status != 200:
                        source.response.read()
                        log(f"refused ({status}): {source.response.text}")
                        if 400 <= status < 500:
                            return 1  # a bad subscribe; retrying will not help
                    else:
                        log(f"connected, topics {', '.join(topics)}"
                            + (f", resuming after {last_id}" if last_id else ""))
                        delay = first_delay
                        for event in source.iter_sse():
                            if event.retry is not None:
                                first_delay = delay = event.retry / 1000
                            if not event.data:
                                # A block without data (ssecast ends a stream it shuts down with
                                # `retry:` alone) dispatches no event, as in a browser.
                                continue
                            if event.event == "gap":
                                gap = json.loads(event.data)
                                oldest = gap["oldestId"]
                                log(f"gap: events after {gap['lastEventId']} were missed; "
                                    + (f"history resumes at {oldest}" if oldest else
                                       "the server holds no history (it may have restarted)"))
                                continue
                            # A new connection starts with no id of its own: keep ours.
                            if event.id:
                                last_id = event.id
                            print(f"{event.id} {event.event} {event.data}", flush=True)
                        log("the stream ended")
            except (httpx.TransportError, SSEError) as err:
                log(f"connection lost: {err!r}")
            log(f"reconnecting in {delay:g} s")
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


def main() -> int:
    topics = sys.argv[1:] or ["default"]
    if any(topic.startswith("-") for topic in topics):
        print(__doc__, file=sys.stderr)
        return 2
    url = os.environ.get("SSECAST_URL", "http://127.0.0.1:8080").rstrip("/") + "/events"
    # `docker stop`, systemd and friends send SIGTERM: stop as cleanly as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return subscribe(url, topics)
    except KeyboardInterrupt:  # Ctrl-C (or SIGINT) is the way to stop
        return 0


if __name__ == "__main__":
    sys.exit(main())
