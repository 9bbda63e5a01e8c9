#!/usr/bin/env python3
"""Publishes one event to ssecast from Python with httpx, the way a backend would.

Shows the JSON form of `POST /publish`: topics, data, and the optional event type and id; the
answer gives the event's id and how many subscribers it was queued for, and an error answer
(`{"error": "..."}` with a 4xx status) is printed and ends the script with status 1.

Run:
    python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt
    .venv/bin/python examples/publish.py news "hello from python"
    .venv/bin/python examples/publish.py news sport "two topics, one event" --event note
The server is SSECAST_URL, by default http://127.0.0.1:8080.
"""

import argparse
import os
import sys

import httpx


def main() -> int:
    parser = argparse.ArgumentParser(description="Publish one event to ssecast.")
    parser.add_argument("topics", nargs="+", metavar="TOPIC", help="one or more topics")
    parser.add_argument("data", help="the event's data (newlines allowed)")
    parser.add_argument("--event", help="event type; browsers see it as addEventListener(type)")
    parser.add_argument("--id", help="event id (by default the server assigns one)")
    args = parser.parse_args()

    url = os.environ.get("SSECAST_URL", "http://127.0.0.1:8080").rstrip("/") + "/publish"
    body = {"topic": args.topics, "data": args.data}
    if args.event:
        body["event"] = args.event
    if args.id:
        body["id"] = args.id

    try:
        response = httpx.post(url, json=body, timeout=10.0)
    except httpx.TransportError as err:
        print(f"cannot reach {url}: {err}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        try:
            reason = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            reason = response.text
        print(f"refused ({response.status_code}): {reason}", file=sys.stderr)
        return 1
    answer = response.json()
    count = answer["subscribers"]
    print(f"published {answer['id']} to {count} subscriber{'' if count == 1 else 's'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
