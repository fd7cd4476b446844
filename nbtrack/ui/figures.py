"""A grid of bqplot figures drawn from `ChartData`: one figure per chart, one mark per line.

Only lines named as stale are resent (each `Lines` update is one comm message carrying ≤ 2,000 points). A grid
that shows a chosen few of many charts (`show`) keeps the figures it hid for a while and closes the ones
hidden longest (`evict`), so neither the kernel nor the browser holds a figure per chart ever shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nbtrack.render.charts import MAX_CHARTS, ChartData, LineData

GRID_COLUMNS = "repeat(auto-fill, minmax(360px, 1fr))"


class FigureGrid:
    def __init__(self, columns: str = GRID_COLUMNS, height: str = "260px") -> None:
        import ipywidgets as W

        self.height = height
        self.figures: dict[str, Any] = {}
        self.marks: dict[str, Any] = {}
        self._spans: dict[str, Any] = {}
        self._keys: dict[str, list[str]] = {}  # family -> the keys of its marks
        self._shown_at: dict[str, int] = {}  # family -> when `show` last showed it
        self._shows = 0
        self.widget = W.GridBox(layout=W.Layout(grid_template_columns=columns, width="100%"))

    def update(
        self,
        charts: list[ChartData],
        stale: set[str] | None = None,
        *,
        relabel: bool = False,
        arrange: bool = True,
    ) -> int:
        """Draw `charts`; lines whose key is in `stale` (all when None) get their data resent.

        With `arrange`, new figures are laid out at once (all figures, in the order they were made); without
        it the caller lays them out with `show`.
        """
        import bqplot as bq

        messages = 0
        new_figures = False
        for chart in charts:
            figure = self.figures.get(chart.family)
            if figure is None:
                figure = self.figures[chart.family] = self._make_figure(bq, chart)
                new_figures = True
            if self._is_log(figure) != chart.log_y:
                self._set_scale(bq, figure, chart.log_y)
                messages += 1
            if relabel and figure.axes[0].label != chart.x_label:
                figure.axes[0].label = chart.x_label
                messages += 1
            for line in chart.lines:
                if stale is not None and line.key not in stale and line.key in self.marks:
                    continue
                mark = self.marks.get(line.key)
                if mark is None:
                    self.marks[line.key] = self._make_mark(bq, figure, line)
                    self._keys.setdefault(chart.family, []).append(line.key)
                    messages += 1
                    continue
                with mark.hold_sync():
                    mark.x = line.x
                    mark.y = line.y
                messages += 1
            messages += self._update_spans(bq, figure, chart)
        if new_figures and arrange:
            self.widget.children = tuple(self.figures.values())
            messages += 1
        return messages

    def show(self, families: Sequence[str]) -> int:
        """Lay out exactly the figures of `families` (drawn already), in that order."""
        self._shows += 1
        for family in families:
            self._shown_at[family] = self._shows
        children = tuple(self.figures[f] for f in families if f in self.figures)
        if children != tuple(self.widget.children):
            self.widget.children = children
            return 1
        return 0

    def evict(self, keep: int, protect: Sequence[str] = ()) -> list[str]:
        """Close the figures hidden longest until at most `keep` remain; returns the families closed."""
        if len(self.figures) <= keep:
            return []
        protected = set(protect)
        hidden = sorted(
            (f for f in self.figures if f not in protected), key=lambda f: self._shown_at.get(f, 0)
        )
        closed = hidden[: len(self.figures) - keep]
        for family in closed:
            figure = self.figures.pop(family)
            self._shown_at.pop(family, None)
            parts = [figure, *figure.marks, *figure.axes]
            parts += [scale for mark in figure.marks for scale in mark.scales.values()]
            widgets = {id(w): w for w in parts}.values()  # marks share the figure's scales: close each once
            for key in self._keys.pop(family, []):
                self.marks.pop(key, None)
            self._spans.pop(family, None)
            for widget in widgets:
                widget.close()
        return closed

    def replace(self, charts: list[ChartData], keep: int = 3 * MAX_CHARTS) -> int:
        """Show exactly `charts`: lines and figures not in them go (the compare widget's selection changed).

        Hidden figures stay for a while (at most `keep` figures in all), so going back to a chart is quick.
        """
        messages = 0
        wanted = {line.key for chart in charts for line in chart.lines}
        for key in [k for k in self.marks if k not in wanted]:
            mark = self.marks.pop(key)
            for family, figure in self.figures.items():
                if mark in figure.marks:
                    figure.marks = [m for m in figure.marks if m is not mark]
                    self._keys[family] = [k for k in self._keys.get(family, []) if k != key]
                    messages += 1
            mark.close()
        for chart in charts:
            if chart.family in self.figures and self.figures[chart.family].axes[0].label != chart.x_label:
                self.figures[chart.family].axes[0].label = chart.x_label
                messages += 1
        messages += self.update(charts, arrange=False)
        families = [chart.family for chart in charts]
        messages += self.show(families)
        self.evict(keep, protect=families)
        return messages

    def _update_spans(self, bq: Any, figure: Any, chart: ChartData) -> int:
        """Shade the chart's spans (the training span on system charts) as one filled outline."""
        if not chart.spans:
            return 0
        xs = np.array([v for start, end in chart.spans for v in (start, start, end, end)], dtype=float)
        ys = np.array([v for _ in chart.spans for v in (0.0, 1.0, 1.0, 0.0)], dtype=float)
        span = self._spans.get(chart.family)
        if span is None:
            span = self._spans[chart.family] = bq.Lines(
                x=xs,
                y=ys,
                scales={"x": figure.axes[0].scale, "y": bq.LinearScale(min=0.0, max=1.0)},
                fill="inside",
                fill_colors=["#2ca02c"],
                fill_opacities=[0.08],
                colors=["#2ca02c"],
                opacities=[0.0],
                labels=["training"],
                display_legend=False,
            )
            figure.marks = [span, *figure.marks]
            return 1
        if not np.array_equal(np.asarray(span.x, dtype=float), xs):
            with span.hold_sync():
                span.x, span.y = xs, ys
            return 1
        return 0

    def _make_figure(self, bq: Any, chart: ChartData) -> Any:
        import ipywidgets as W

        x_scale = bq.LinearScale()
        y_scale = bq.LogScale() if chart.log_y else bq.LinearScale()
        axes = [
            bq.Axis(scale=x_scale, label=chart.x_label, grid_lines="dashed"),
            bq.Axis(scale=y_scale, orientation="vertical", tick_format=".3g", grid_lines="dashed"),
        ]
        return bq.Figure(
            marks=[],
            axes=axes,
            title=chart.family,
            legend_location="top-right",
            fig_margin={"top": 40, "bottom": 40, "left": 60, "right": 20},
            layout=W.Layout(height=self.height, width="100%", min_width="340px"),
        )

    def _make_mark(self, bq: Any, figure: Any, line: LineData) -> Any:
        mark = bq.Lines(
            x=line.x,
            y=line.y,
            scales={"x": figure.axes[0].scale, "y": figure.axes[1].scale},
            colors=[line.color],
            stroke_width=1 if line.role == "batch" else 2,
            marker="circle" if line.markers else None,
            marker_size=24,
            labels=[line.name],
            display_legend=True,
        )
        figure.marks = [*figure.marks, mark]
        return mark

    @staticmethod
    def _is_log(figure: Any) -> bool:
        return type(figure.axes[1].scale).__name__ == "LogScale"

    def _set_scale(self, bq: Any, figure: Any, log_y: bool) -> None:
        scale = bq.LogScale() if log_y else bq.LinearScale()
        figure.axes = [
            figure.axes[0],
            bq.Axis(scale=scale, orientation="vertical", tick_format=".3g", grid_lines="dashed"),
        ]
        for mark in figure.marks:
            if mark not in self._spans.values():
                mark.scales = {"x": figure.axes[0].scale, "y": scale}
