"""Pure drawing: turn runs into what is shown (chart data, comparisons, SVG, HTML tables, the model graph, log
lines, the dashboard's static snapshot, sanitised notebook HTML, durations). No widgets: the widgets, the
snapshot and the reports all draw with these."""
