"""A worker that speaks the Kubernetes docs' `rediswq.py` protocol, written here for comparison.

The docs' helper (content/en/examples/application/job/redis/rediswq.py in kubernetes/website) keeps
the queue in the list NAME, moves a leased item with (B)RPOPLPUSH to NAME:processing, records the
lease with SETEX NAME:leased_by_session:<sha224 of the item>, and completes with LREM and DEL;
before each item it checks that both lists are not empty (two LLEN). This module issues exactly
those commands, one round trip each, so the tests can show that a queue seeded by `jobworker seed`
is drained by the docs' worker, and the benchmark has the docs' pattern as its baseline.
"""

import hashlib
import uuid
from collections.abc import Callable

import redis


def drain_like_the_docs(
    client: redis.Redis, name: str, process: Callable[[bytes], None], lease_seconds: int = 10
) -> int:
    """Process items until both lists are empty, as the docs' worker.py loop does."""
    processing = name + ":processing"
    lease_prefix = name + ":leased_by_session:"
    session = str(uuid.uuid4())
    processed = 0
    while not (client.llen(name) == 0 and client.llen(processing) == 0):
        item = client.brpoplpush(name, processing, timeout=2)
        if item is None:
            continue
        lease_key = lease_prefix + hashlib.sha224(item).hexdigest()
        client.execute_command("SETEX", lease_key, lease_seconds, session)
        process(item)
        client.lrem(processing, 0, item)
        client.delete(lease_key)
        processed += 1
    return processed
