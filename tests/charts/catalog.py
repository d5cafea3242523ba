"""The charts of charts/ by type: the application charts a user installs, and the library charts
they depend on (jobworker-common), which hold shared helpers and render nothing themselves."""

import yaml

from tests.support.helm import CHARTS


def chart_type(chart: str) -> str:
    return (yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text()) or {}).get("type") or "application"


ALL_CHARTS = sorted(path.parent.name for path in CHARTS.glob("*/Chart.yaml"))
LIBRARY_CHARTS = [chart for chart in ALL_CHARTS if chart_type(chart) == "library"]
APPLICATION_CHARTS = [chart for chart in ALL_CHARTS if chart_type(chart) == "application"]
