"""The charts of charts/ by type: the application charts a user installs, and the library charts
they depend on (jobworker-common), which hold shared helpers and render nothing themselves."""

from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.helm import CHARTS, RELEASE, chart_path


@dataclass(frozen=True)
class ChartUnderTest:
    """A chart that tests render: each kind of chart (jobcharts.py, brokercharts.py) adds where
    its parts are."""

    name: str  # its directory under charts/

    def __str__(self) -> str:  # the test ids
        return self.name

    @property
    def path(self) -> Path:
        return chart_path(self.name)

    @property
    def fullname(self) -> str:
        """The name of its objects in release RELEASE, as the `helm create` fullname helper gives."""
        return f"{RELEASE}-{self.name}"


def chart_type(chart: str) -> str:
    return (yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text()) or {}).get("type") or "application"


ALL_CHARTS = sorted(path.parent.name for path in CHARTS.glob("*/Chart.yaml"))
LIBRARY_CHARTS = [chart for chart in ALL_CHARTS if chart_type(chart) == "library"]
APPLICATION_CHARTS = [chart for chart in ALL_CHARTS if chart_type(chart) == "application"]
