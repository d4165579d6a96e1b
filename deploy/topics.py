"""Creates Catalyst's topics from deploy/topics.yaml, or checks that the broker is ready.

Usage: topics.py create|ready|list
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.kafka_admin import admin, broker_ready, ensure_topics
from services.common.topics import load_topics


def main(argv: list[str]) -> int:
    bootstrap = os.environ.get("CATALYST_KAFKA_BOOTSTRAP", f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}")
    command = argv[1] if len(argv) > 1 else "create"
    if command == "ready":
        return 0 if broker_ready(bootstrap) else 1
    if command == "create":
        created = ensure_topics(bootstrap, load_topics().values())
        for name in created:
            print(f"[topics] created {name}", file=sys.stderr)
        return 0
    if command == "list":
        client = admin(bootstrap)
        print("\n".join(sorted(client.list_topics())))
        client.close()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
