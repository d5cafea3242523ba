"""indexed-job's items as its init container reads them, for the tests and benchmarks that feed
jobworker-write-item without rendering the chart."""

import base64
from collections.abc import Iterable


def base64_lines(items: Iterable[bytes]) -> str:
    """Line N+1 holds item N in base64 (the chart's jobworker-common.items.base64Lines)."""
    return "".join(base64.b64encode(item).decode() + "\n" for item in items)
