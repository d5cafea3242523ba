"""The docs' worker.py: lease items from the Redis list job2 until it and its processing list are
empty, printing each item (the docs print "Working on ITEM", then sleep for their demo's sake; the
work here is only the print, as in bench/cluster_jobs.py's other contenders)."""

import os

import redis
from docs_protocol import drain_like_the_docs

client = redis.Redis(
    host=os.environ.get("REDIS_HOST", "redis"), port=int(os.environ.get("REDIS_PORT", "6379"))
)
processed = drain_like_the_docs(client, os.environ.get("QUEUE", "job2"), lambda item: print(item.decode()))
print(f"Queue empty, exit.. ({processed} items)")
