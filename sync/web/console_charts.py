"""The console's charts (issue 21, item 2): the /charts page's context and the overview's two
small charts, drawn as inline SVG (``sync.web.charts``) from ``sync.chart_data``.

Which drawing each figure gets: what happened in a period (findings opened, revenue, each
stream's lag now, as rows) is bars; what stood at a period's end (unresolved findings, the outbox's
depth, sync lag, receivables) is a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from markupsafe import Markup

from state.store import Tx
from sync.chart_data import MAX_COUNT, PERIODS, ChartRequestError, chart_choice, chart_page, overview_charts
from sync.web.charts import bar_chart, line_chart, row_chart


def chart_request(query: Mapping[str, str]) -> tuple[str, int]:
    """The period and count asked for (``?period=week&periods=8``); a clear error otherwise."""
    raw = query.get("periods") or ""
    if raw and not raw.isdigit():
        raise ChartRequestError(f"periods must be a whole number from 1 to {MAX_COUNT}, not {raw!r}")
    return chart_choice(query.get("period") or "month", int(raw) if raw else None)


def charts_context(daemon: Any, query: Mapping[str, str]) -> dict[str, Any]:
    """Everything charts.html shows, for the period asked for (blocking: run it off the loop)."""
    period, count = chart_request(query)
    now: datetime = daemon.clock()
    with daemon.hub.store.transaction() as tx:
        page = chart_page(tx, now, period, count, connections=sorted(daemon.config.connections))
    findings_opened, findings_open = page["findings"]
    money = page["money"]
    return {
        "period": period, "count": count, "periods": PERIODS, "now": now, "undated": page["undated"],
        "findings": [bar_chart(findings_opened), line_chart(findings_open)],
        "operations": [line_chart(page["outbox"]), line_chart(page["lag"]), row_chart(page["stream_lag"])],
        "currencies": [{"currency": revenue.currency, "revenue": bar_chart(revenue), "receivables": line_chart(owed)}
                       for revenue, owed in zip(money[0::2], money[1::2], strict=True)],
    }


def overview_svgs(tx: Tx, now: datetime) -> list[Markup]:
    """The overview's small charts: findings opened per day by kind, the outbox's depth per day."""
    opened, depth = overview_charts(tx, now)
    return [bar_chart(opened, 420, 180), line_chart(depth, 420, 180)]


__all__ = ["chart_request", "charts_context", "overview_svgs"]
