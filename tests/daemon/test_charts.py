"""The console's server-side SVG charts (issue 21, item 2): bars and lines whose every mark names
its period, series and value as people read it (money through the one formatter), an SVG that
titles itself for screen readers, and the numbers beside it; the /charts page's request checks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from sync.chart_data import Chart, ChartRequestError, Series
from sync.web.charts import bar_chart, line_chart, nice_step
from sync.web.console_charts import chart_request

SVG = "{http://www.w3.org/2000/svg}"
MONTHS = ("2026-09", "2026-10", "2026-11")


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # well-formed: it is XML as well as HTML


def marks(figure: ET.Element, series: str, tag: str) -> list[ET.Element]:
    group = next(g for g in figure.iter(f"{SVG}g") if g.get("data-series") == series)
    return list(group.iter(f"{SVG}{tag}"))


def title_of(element: ET.Element) -> str:
    found = element.find(f"{SVG}title")
    assert found is not None and found.text is not None
    return found.text


def test_money_bars_name_each_period_and_amount() -> None:
    chart = Chart("revenue-USD", "Revenue invoiced and credited, USD", MONTHS,
                  (Series("invoiced", (10900, 20000, 2000)), Series("credited", (0, 1000, 3000))),
                  unit="money", currency="USD")
    figure = parse(bar_chart(chart))
    assert figure.get("id") == "chart-revenue-USD"
    svg = figure.find(f"{SVG}svg")
    assert svg is not None and svg.get("role") == "img"
    labelled = (svg.get("aria-labelledby") or "").split()
    assert [svg.find(f"{SVG}{tag}") is not None for tag in ("title", "desc")] == [True, True]
    assert labelled == ["revenue-USD-title", "revenue-USD-desc"]
    assert title_of(svg) == "Revenue invoiced and credited, USD"
    invoiced = marks(figure, "invoiced", "rect")
    assert [(r.get("data-period"), r.get("data-value")) for r in invoiced] == [
        ("2026-09", "10900"), ("2026-10", "20000"), ("2026-11", "2000")]
    assert title_of(invoiced[1]) == "2026-10 · invoiced: 200.00 USD"
    heights = [int(r.get("height") or 0) for r in invoiced]
    assert heights[1] > heights[0] > heights[2] > 0  # taller for more
    credited = marks(figure, "credited", "rect")
    assert int(credited[0].get("height") or -1) == 0 and title_of(credited[2]) == "2026-11 · credited: 30.00 USD"
    # the y axis speaks money too, and the period labels are under the bars
    texts = [t.text for t in figure.iter(f"{SVG}text")]
    assert texts[:5] == ["0.00 USD", "50.00 USD", "100.00 USD", "150.00 USD", "200.00 USD"]
    assert [t.text for t in figure.iter(f"{SVG}text") if t.get("class") == "period"] == list(MONTHS)
    # the same numbers in a table
    rows = [[c.text for c in row] for row in figure.iter("tr")]
    assert rows[2] == ["2026-10", "200.00 USD", "10.00 USD"]


def test_stacked_bars_add_up_per_period() -> None:
    chart = Chart("findings-opened", "Findings opened, by kind", ("d1", "d2"),
                  (Series("mismatch", (3, 1)), Series("missing", (1, 0))), stacked=True)
    figure = parse(bar_chart(chart))
    mismatch, missing = marks(figure, "mismatch", "rect"), marks(figure, "missing", "rect")
    # the second kind sits on the first: its bottom is the first's top
    assert int(missing[0].get("y") or 0) + int(missing[0].get("height") or 0) == int(mismatch[0].get("y") or 0)
    assert mismatch[0].get("x") == missing[0].get("x")
    assert title_of(missing[0]) == "d1 · missing: 1"


def test_lines_break_where_a_period_has_no_value() -> None:
    chart = Chart("sync-lag", "Sync lag", ("d1", "d2", "d3", "d4"),
                  (Series("stripe", (None, 3600, 7200, 60)),), unit="seconds")
    figure = parse(line_chart(chart))
    points = marks(figure, "stripe", "circle")
    assert [p.get("data-period") for p in points] == ["d2", "d3", "d4"]
    assert title_of(points[1]) == "d3 · stripe: 2 h"
    (line,) = marks(figure, "stripe", "polyline")
    assert len((line.get("points") or "").split()) == 3
    assert [int(p.get("cy") or 0) for p in points][1] < int(points[0].get("cy") or 0)  # higher is more
    assert "—" in [c.text for c in figure.iter("td")]  # no value for d1 in the table


def test_text_is_escaped() -> None:
    chart = Chart("x", "<script>alert(1)</script>", ("a&b",), (Series("<i>", (1,)),))
    markup = str(bar_chart(chart))
    assert "<script>" not in markup and "&lt;script&gt;" in markup and "a&amp;b" in markup


def test_nice_steps() -> None:
    assert [nice_step(n) for n in (1, 4, 9, 20000, 20001, 183570)] == [1, 1, 5, 5000, 10000, 50000]
    # durations step by what a clock shows: 3 h over 4 ticks is 1 h, not 2,700 s
    assert [nice_step(n, seconds=True) for n in (50, 10800, 183570)] == [15, 3600, 86400]


def test_the_page_request_is_checked() -> None:
    assert chart_request({}) == ("month", 12)
    assert chart_request({"period": "week", "periods": "8"}) == ("week", 8)
    for query, said in (({"period": "year"}, "use one of day, week, month"),
                        ({"periods": "0"}, "from 1 to 60"), ({"periods": "x"}, "from 1 to 60")):
        with pytest.raises(ChartRequestError, match=said):
            chart_request(query)
