"""`odp dead-letters`: the messages the services gave up on
(shared/retrying.py), and sending them back once what failed them is mended."""

from __future__ import annotations

import json
import sys

from shared.config import Config
from shared.retrying import dead_letters, service_names


def run(args, config: Config) -> int:
    services = [args.service] if args.service else service_names()
    total = replayed = 0
    for service in services:
        try:
            messages = dead_letters(config, service, replay=args.replay)
        except OSError as error:
            print(f"error: the broker at {config.amqp_uri} did not answer: {error}",
                  file=sys.stderr)
            return 1
        total += len(messages)
        replayed += sum(message["replayed"] for message in messages)
        for message in messages:
            kept = ("" if message["replayed"] or not args.replay
                    else "  (kept: its queue does not exist)")
            print(f"{service}  {message['queue']}  tries {message['tries']}  "
                  f"{message['ids']}{kept}\n    error: {message['error']}")
            if args.payloads:
                print(f"    payload: {json.dumps(message['payload'], sort_keys=True)}")
    if args.replay:
        print(f"{replayed} message(s) sent back to their queues, {total - replayed} kept")
    else:
        print(f"{total} message(s) dead-lettered")
    return 0
