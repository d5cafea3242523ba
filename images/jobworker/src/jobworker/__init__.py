"""Workers for the three Kubernetes batch Job patterns: a Redis work queue with many items per pod,
a RabbitMQ work queue with one message per pod, and an Indexed Job mapping an index to an item."""

# The one place the version is written: pyproject.toml reads it from here, and reading it here
# keeps importlib.metadata (a noticeable part of a worker's start-up) out of every start.
__version__ = "0.1.0"
