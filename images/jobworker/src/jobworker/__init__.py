"""Workers for the three Kubernetes batch Job patterns: a Redis work queue with many items per pod,
a RabbitMQ work queue with one message per pod, and an Indexed Job mapping an index to an item."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jobworker")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
