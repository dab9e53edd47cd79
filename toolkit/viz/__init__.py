"""Charts: DataFrames or graphs in, plotly figures out; and the self-contained HTML report."""

from toolkit.viz._common import save_figure
from toolkit.viz.event_graph import plot_event_graph
from toolkit.viz.failures import plot_failure_breakdown
from toolkit.viz.findings import plot_findings, plot_unhandled
from toolkit.viz.flow_graph import plot_flow_graph
from toolkit.viz.latency import plot_latency
from toolkit.viz.report import report
from toolkit.viz.timeline import plot_timeline
from toolkit.viz.trace import plot_waterfall, transcript

__all__ = ["plot_event_graph", "plot_failure_breakdown", "plot_findings", "plot_flow_graph",
           "plot_latency", "plot_timeline", "plot_unhandled", "plot_waterfall", "report",
           "save_figure", "transcript"]  # fmt: skip
