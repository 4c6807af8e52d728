"""Charts drawn on the server as inline SVG (issue 21, item 2): bars for what happened in each
period, lines for what stood at each period's end, rows for one figure per named thing.

No chart library and no script: the console's CSP allows scripts from /static/ only and no inline
styles, so every colour is an SVG presentation attribute. Each chart is a ``<figure>`` whose SVG
names itself (``<title>``, ``<desc>``), whose every bar and point carries its own ``<title>``
(the period, the series, the value as people read it — money through the one formatter), and
whose numbers are also in a table beside it, for a screen reader and for copying.

Coordinates are whole pixels computed with integer arithmetic from the integer values.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from sync.chart_data import Chart

# Colour-blind-safe (Okabe-Ito), in the order series take them.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
LEFT, RIGHT, TOP, BOTTOM = 104, 36, 12, 34  # RIGHT: room for half the newest label


# Steps a clock reads well: seconds, minutes, hours, days.
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
              86400, 172800, 604800, 1209600, 2592000)


def nice_step(span: int, ticks: int = 4, *, seconds: bool = False) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ step (for durations: a step a clock reads well) that covers
    ``span`` in ``ticks`` steps."""
    raw = max(1, -(-span // ticks))
    if seconds and raw <= TIME_STEPS[-1]:
        return next(step for step in TIME_STEPS if step >= raw)
    magnitude: int = 10 ** (len(str(raw)) - 1)
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


class _Frame:
    """The plot's size and its integer value → pixel mapping, with zero inside the range."""

    def __init__(self, chart: Chart, width: int, height: int, low: int, high: int) -> None:
        self.chart, self.width, self.height = chart, width, height
        self.step = nice_step(max(1, high - min(0, low)), seconds=chart.unit == "seconds")
        self.top = -(-max(high, 0) // self.step) * self.step or self.step
        self.bottom = (min(low, 0) // self.step) * self.step
        self.plot_w, self.plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def y(self, value: int) -> int:
        return TOP + (self.top - value) * self.plot_h // (self.top - self.bottom)

    def slot(self, index: int) -> tuple[int, int]:
        """The left edge and width of period ``index``'s column."""
        n = len(self.chart.labels)
        left = LEFT + index * self.plot_w // n
        return left, LEFT + (index + 1) * self.plot_w // n - left

    def axes(self) -> list[str]:
        parts = []
        for value in range(self.bottom, self.top + 1, self.step):
            y = self.y(value)
            parts.append(f'<line x1="{LEFT}" x2="{self.width - RIGHT}" y1="{y}" y2="{y}" stroke="#eaecf0"/>'
                         f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end" font-size="11" fill="#475467">'
                         f'{escape(self.chart.text(value))}</text>')
        # every k-th period label, so that labels (about 6 px a character at 11 px) never touch
        longest = max((len(label) for label in self.chart.labels), default=1)
        every = max(1, -(-len(self.chart.labels) * (longest * 6 + 10) // self.plot_w))
        last = len(self.chart.labels) - 1
        for index, label in enumerate(self.chart.labels):
            if (last - index) % every == 0:  # counted from the newest, which is always labelled
                left, w = self.slot(index)
                parts.append(f'<text x="{left + w // 2}" y="{self.height - BOTTOM + 16}" text-anchor="middle" '
                             f'font-size="11" fill="#475467" class="period">{escape(label)}</text>')
        zero = self.y(0)
        parts.append(f'<line x1="{LEFT}" x2="{self.width - RIGHT}" y1="{zero}" y2="{zero}" stroke="#667085"/>')
        return parts


def _point_title(chart: Chart, index: int, name: str, value: int | None) -> str:
    shown = "none yet" if value is None else chart.text(value)
    return f"<title>{escape(chart.labels[index])} · {escape(name)}: {escape(shown)}</title>"


def _legend(chart: Chart, height: int) -> str:
    items, x = [], LEFT
    for n, s in enumerate(chart.series):
        colour = PALETTE[n % len(PALETTE)]
        items.append(f'<rect x="{x}" y="{height - 12}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="{height - 3}" font-size="11" fill="#1d2939">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return f'<g class="legend">{"".join(items)}</g>'


def _describe(chart: Chart) -> str:
    last = chart.labels[-1] if chart.labels else ""
    said = []
    for s in chart.series:
        value = s.values[-1] if s.values else None
        said.append(f"{s.name} {chart.text(value) if value is not None else 'none'}")
    return f"{len(chart.labels)} periods to {last}; latest: " + ", ".join(said)


def _figure(chart: Chart, width: int, height: int, body: Sequence[str], kind: str, *,
            legend: bool = True) -> Markup:
    key = escape(chart.key)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-labelledby="{key}-title {key}-desc" class="chart-{kind}">'
           f'<title id="{key}-title">{escape(chart.title)}</title><desc id="{key}-desc">{escape(_describe(chart))}</desc>'
           f'{"".join(body)}{_legend(chart, height) if legend else ""}</svg>')
    notes = "".join(f"<p class=\"note\">{escape(n)}</p>" for n in chart.notes)
    return Markup(f'<figure class="chart" id="chart-{key}" data-unit="{chart.unit}">'
                  f'<figcaption>{escape(chart.title)}</figcaption>{svg}{notes}{_table(chart)}</figure>')


def _table(chart: Chart) -> str:
    head = "".join(f"<th scope=\"col\">{escape(s.name)}</th>" for s in chart.series)
    rows = []
    for index, label in enumerate(chart.labels):
        cells = "".join(f"<td>{escape(chart.text(v)) if (v := s.values[index]) is not None else '—'}</td>"
                        for s in chart.series)
        rows.append(f'<tr><th scope="row">{escape(label)}</th>{cells}</tr>')
    return (f'<details><summary>numbers</summary><table class="chart-numbers"><thead><tr><th>period</th>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></details>')


def bar_chart(chart: Chart, width: int = 560, height: int = 240) -> Markup:
    """Side-by-side bars per period, or one stacked bar (``chart.stacked``)."""
    if chart.stacked:
        totals = [sum(v or 0 for v in column) for column in zip(*(s.values for s in chart.series), strict=True)]
        low, high = 0, max(totals, default=0)
    else:
        known = [v for s in chart.series for v in s.values if v is not None]
        low, high = min(known, default=0), max(known, default=0)
    frame = _Frame(chart, width, height, low, high)
    body = frame.axes()
    lanes = 1 if chart.stacked else max(1, len(chart.series))
    base = [0] * len(chart.labels)
    for n, s in enumerate(chart.series):
        colour = PALETTE[n % len(PALETTE)]
        bars = []
        for index, value in enumerate(s.values):
            if value is None:
                continue
            left, w = frame.slot(index)
            pad = max(1, w // 8)
            lane_w = max(1, (w - 2 * pad) // lanes)
            x = left + pad + (0 if chart.stacked else n * lane_w)
            start = base[index] if chart.stacked else 0
            y0, y1 = frame.y(start), frame.y(start + value)
            if chart.stacked:
                base[index] += value
            bars.append(f'<rect x="{x}" y="{min(y0, y1)}" width="{lane_w}" height="{abs(y0 - y1)}" fill="{colour}" '
                        f'data-period="{escape(chart.labels[index])}" data-value="{value}">'
                        f'{_point_title(chart, index, s.name, value)}</rect>')
        body.append(f'<g data-series="{escape(s.name)}">{"".join(bars)}</g>')
    return _figure(chart, width, height, body, "bars")


def row_chart(chart: Chart, width: int = 560) -> Markup:
    """One horizontal bar per label (long labels such as ``stripe:invoice`` read on the left),
    the value written at the bar's end; one series."""
    (only,) = chart.series
    label_w, row_h, value_w = 180, 22, 90
    height = TOP + row_h * max(1, len(chart.labels)) + 8
    known = [v for v in only.values if v is not None]
    high = max(max(known, default=0), 1)
    bar_w = width - label_w - value_w
    rows = []
    for index, (label, value) in enumerate(zip(chart.labels, only.values, strict=True)):
        y = TOP + index * row_h
        shown = 0 if value is None else max(0, value) * bar_w // high
        text = "none" if value is None else chart.text(value)
        rows.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="11" fill="#1d2939" '
                    f'class="period">{escape(label)}</text>'
                    f'<rect x="{label_w}" y="{y + 4}" width="{shown}" height="{row_h - 8}" fill="{PALETTE[0]}" '
                    f'data-period="{escape(label)}" data-value="{"" if value is None else value}">'
                    f'{_point_title(chart, index, only.name, value)}</rect>'
                    f'<text x="{label_w + shown + 6}" y="{y + 15}" font-size="11" fill="#475467">{escape(text)}</text>')
    body = [f'<g data-series="{escape(only.name)}">{"".join(rows)}</g>']
    return _figure(chart, width, height, body, "rows", legend=False)


def line_chart(chart: Chart, width: int = 560, height: int = 240) -> Markup:
    """A line per series through each period's value, broken where a period has none."""
    known = [v for s in chart.series for v in s.values if v is not None]
    frame = _Frame(chart, width, height, min(known, default=0), max(known, default=0))
    body = frame.axes()
    for n, s in enumerate(chart.series):
        colour = PALETTE[n % len(PALETTE)]
        runs: list[list[str]] = [[]]
        points = []
        for index, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            left, w = frame.slot(index)
            x, y = left + w // 2, frame.y(value)
            runs[-1].append(f"{x},{y}")
            points.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}" data-period="{escape(chart.labels[index])}" '
                          f'data-value="{value}">{_point_title(chart, index, s.name, value)}</circle>')
        lines = "".join(f'<polyline points="{" ".join(r)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                        for r in runs if len(r) > 1)
        body.append(f'<g data-series="{escape(s.name)}">{lines}{"".join(points)}</g>')
    return _figure(chart, width, height, body, "lines")


__all__ = ["PALETTE", "bar_chart", "line_chart", "nice_step", "row_chart"]
