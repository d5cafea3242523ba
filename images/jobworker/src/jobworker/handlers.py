"""In-process item handlers: `--handler MODULE:FUNCTION`.

A handler is called with each item as bytes; returning means success, raising means failure. This
is the fast path for many small items, where starting a process per item would cost more than the
work itself.
"""

import importlib
import sys
from collections.abc import Callable

from jobworker.errors import JobWorkerError, UsageError

Handler = Callable[[bytes], object]


def noop(item: bytes) -> None:
    """Does nothing: the benchmark's handler, so that only the queue's own cost is measured."""


def echo(item: bytes) -> None:
    """Prints the item on a line of its own, as the Kubernetes docs' worker does with each item: the
    smallest handler whose work shows in the pod's log (bench/cluster_jobs.py times items by it)."""
    sys.stdout.buffer.write(item + b"\n")
    sys.stdout.flush()


def load_handler(spec: str) -> Handler:
    """Import `package.module:function`, with one-line errors for each way that can go wrong."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"handler {spec!r} is not of the form MODULE:FUNCTION")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise JobWorkerError(f"cannot import handler module {module_name!r}: {error}") from None
    target: object = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise JobWorkerError(f"handler module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise JobWorkerError(f"handler {spec!r} is not callable")
    return target
