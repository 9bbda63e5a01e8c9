#!/usr/bin/env python3
"""Publishes one update to ssecast with mercure-publisher, a Python client written for Mercure hubs.

Shows that a backend built for Mercure needs no change: the package signs a publisher JWT with
the key ssecast was started with (`--publisher-jwt-key`), allowing exactly the topics it
publishes to, and posts Mercure's form to `/.well-known/mercure`; the hub answers with the
update's id, printed here. A refusal (a wrong key, a bad field) is printed with the hub's answer
and ends the script with status 1.

Run (against `ssecast --publisher-jwt-key "$SSECAST_PUBLISHER_JWT_KEY"`):
    python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt
    export SSECAST_PUBLISHER_JWT_KEY='!ChangeThisMercureHubJWTSecretKey!'
    .venv/bin/python examples/mercure_publish.py https://example.com/books/1 '{"title":"Dune"}'
    .venv/bin/python examples/mercure_publish.py https://example.com/books/1 draft --private
The server is SSECAST_URL, by default http://127.0.0.1:8080.
"""

import argparse
import os
import sys

import httpx
from mercure_publisher import MercureConfig, MercurePublisher, MercurePublishError


def main() -> int:
    parser = argparse.ArgumentParser(description="Publish one Mercure update to ssecast.")
    parser.add_argument("topics", nargs="+", metavar="TOPIC", help="the topic, then alternates")
    parser.add_argument("data", help="the update's data, sent as given")
    parser.add_argument("--id", help="the update's id (by default the hub makes one)")
    parser.add_argument("--type", help="event type; browsers see it as addEventListener(type)")
    parser.add_argument("--retry", type=int, help="reconnection delay for subscribers, in ms")
    parser.add_argument("--private", action="store_true", help="only for authorized subscribers")
    args = parser.parse_args()

    base = os.environ.get("SSECAST_URL", "http://127.0.0.1:8080").rstrip("/")
    config = MercureConfig(
        hub_url=base + "/.well-known/mercure",
        publisher_jwt_key=os.environ["SSECAST_PUBLISHER_JWT_KEY"],
        publish_topics=args.topics,
    )
    try:
        with MercurePublisher(config) as publisher:
            event_id = publisher.publish(
                topic=args.topics,
                data=args.data,
                private=args.private,
                id=args.id,
                type=args.type,
                retry=args.retry,
            )
    except MercurePublishError as err:
        print(f"refused ({err.status_code}): {err.response_body}", file=sys.stderr)
        return 1
    except httpx.TransportError as err:
        print(f"cannot reach {config.hub_url}: {err}", file=sys.stderr)
        return 1
    print(f"published {event_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
