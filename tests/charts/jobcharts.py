"""The three job charts as their tests see them: how to render each, and where its parts are.

Each chart's own test module (test_<chart>_chart.py) tests what is its own; what the charts render
alike, from the library chart jobworker-common, is tested once for all three in test_job_charts.py.
"""

from dataclasses import dataclass, field
from typing import Any

from jobworker import constants
from tests.charts.catalog import ChartUnderTest
from tests.charts.checks import env_of
from tests.support.helm import Helm
from tests.support.manifests import Manifests

# Every variable the jobworker CLI reads, by its name in constants.py.
JOBWORKER_VARIABLES = {value for name, value in vars(constants).items() if name.startswith("ENV_")}
# The Kubernetes docs' example items of each pattern.
QUEUE_FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon"]
INDEXED_ITEMS = ["foo", "bar", "baz", "qux", "xyz"]
BUSYBOX = {"repository": "docker.io/library/busybox", "tag": "1.36.1"}


def values_of(container: dict) -> dict[str, str]:
    """A container's plain environment values (not those from Secrets or fields), by name."""
    return {name: entry["value"] for name, entry in env_of(container).items() if "value" in entry}


@dataclass(frozen=True)
class JobChart(ChartUnderTest):
    values: dict[str, Any]  # what each rendering gives unless it says otherwise: the work
    test_pod_suffix: str  # the `helm test` pod is <release>-<chart>-<suffix>
    image: str  # the worker image's name (tests/support/images.py: image_refs)
    entrypoint: str  # the jobworker command the image runs
    queue: bool = True  # a work queue (fine, coarse), or indexed
    extra: dict[str, Any] = field(default_factory=dict)  # with `values`: every container and volume

    @property
    def test_pod(self) -> str:
        return f"{self.fullname}-{self.test_pod_suffix}"

    def render(self, helm: Helm, values: dict | None = None, **kwargs: object) -> Manifests:
        return helm.template(self.path, {**self.values, **(values or {})}, **kwargs)

    def job_spec(self, manifests: Manifests) -> dict:
        """The spec of the chart's one Job, whatever the release is called."""
        return manifests.get("Job")["spec"]

    def pod_spec(self, manifests: Manifests) -> dict:
        return self.job_spec(manifests)["template"]["spec"]

    def pod_labels(self, manifests: Manifests) -> dict[str, str]:
        return self.job_spec(manifests)["template"]["metadata"]["labels"]

    def worker(self, manifests: Manifests) -> dict:
        (container,) = self.pod_spec(manifests)["containers"]
        assert container["name"] == "worker"
        return container


FINE = JobChart(
    "fine-queue-job",
    {"command": ["echo", "processing", "{item}"]},
    "test-queue",
    image="fine-queue-worker",
    entrypoint="jobworker fine",
    extra={"items": ["a"]},  # fine seeds only what it is given: without items, no seed volume
)
COARSE = JobChart(
    "coarse-queue-job",
    {"items": QUEUE_FRUITS, "command": ["echo", "processing", "{item}"]},
    "test-queue",
    image="coarse-queue-worker",
    entrypoint="jobworker coarse",
)
INDEXED = JobChart(
    "indexed-job",
    {"items": INDEXED_ITEMS, "command": ["rev"]},
    "test-items",
    image="indexed-worker",
    entrypoint="jobworker indexed",
    queue=False,
    # The init-container variant: an init container of the worker image writes the item for an
    # unmodified program in an image of its own.
    extra={"programImage": BUSYBOX, "command": ["rev", "/input/data.txt"]},
)
JOB_CHARTS = [FINE, COARSE, INDEXED]
QUEUE_CHARTS = [chart for chart in JOB_CHARTS if chart.queue]
