"""Billing periods of the Stripe emulator's subscriptions: calendar arithmetic and the billing
cycle anchor a subscription is created with.

Stripe facts kept (spec3 ``POST /v1/subscriptions``, docs "Setting the subscription billing cycle
date"): ``billing_cycle_anchor`` (a timestamp) and ``billing_cycle_anchor_config`` are mutually
exclusive; the config is only valid with monthly and yearly prices, and sets the anchor to the
next occurrence of ``day_of_month`` (the month's last day when it is shorter) at ``hour``,
``minute`` and ``second`` UTC, in ``month`` for a yearly price; an anchor may not be later than
the end of the first full period; a monthly anchor on the 31st bills on each month's last day.

Emulator choice: an ``hour``/``minute``/``second`` the config leaves out is the subscription's
creation time's (Stripe does not document the default).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.stripe.emulator.wire import as_int, invalid


def add_interval(ts: int, interval: str, count: int) -> int:
    """Calendar arithmetic for billing periods (month ends clamp, as Stripe does); ``count`` may
    be negative (the period before)."""
    dt = datetime.fromtimestamp(ts, UTC)
    if interval == "day":
        dt += timedelta(days=count)
    elif interval == "week":
        dt += timedelta(weeks=count)
    else:
        months = dt.month - 1 + count * (12 if interval == "year" else 1)
        year, month = dt.year + months // 12, months % 12 + 1
        dt = dt.replace(year=year, month=month, day=min(dt.day, calendar.monthrange(year, month)[1]))
    return int(dt.timestamp())


def _bounded(config: Mapping[str, Any], name: str, low: int, high: int, default: int | None) -> int | None:
    value = as_int(config, name, default)
    if value is not None and not low <= value <= high:
        raise invalid(f"billing_cycle_anchor_config[{name}] must be between {low} and {high}.",
                      f"billing_cycle_anchor_config[{name}]")
    return value


def billing_anchor(params: Mapping[str, Any], now: int, interval: str,
                   count: int) -> tuple[int, dict[str, Any] | None]:
    """The anchor a create request asks for (``now`` when none), and the config as the
    subscription shows it (``None`` unless one was given)."""
    raw = params.get("billing_cycle_anchor_config")
    stamp = as_int(params, "billing_cycle_anchor")
    if raw not in (None, "") and stamp is not None:
        raise invalid("You may only specify one of these parameters: billing_cycle_anchor, "
                      "billing_cycle_anchor_config.", "billing_cycle_anchor_config")
    natural = add_interval(now, interval, count)
    if stamp is not None:
        if not now <= stamp <= natural:
            raise invalid(f"billing_cycle_anchor cannot be later than next natural billing date "
                          f"({natural}) for plan", "billing_cycle_anchor")
        return stamp, None
    if raw in (None, ""):
        return now, None
    if not isinstance(raw, Mapping):
        raise invalid("Invalid object", "billing_cycle_anchor_config")
    if interval not in ("month", "year"):
        raise invalid("billing_cycle_anchor_config is only valid with monthly and yearly prices.",
                      "billing_cycle_anchor_config")
    if raw.get("day_of_month") in (None, ""):
        raise invalid("Missing required param: billing_cycle_anchor_config[day_of_month].",
                      "billing_cycle_anchor_config[day_of_month]", code="parameter_missing")
    at = datetime.fromtimestamp(now, UTC)
    day = _bounded(raw, "day_of_month", 1, 31, None)
    month = _bounded(raw, "month", 1, 12, None)
    hour = _bounded(raw, "hour", 0, 23, at.hour)
    minute = _bounded(raw, "minute", 0, 59, at.minute)
    second = _bounded(raw, "second", 0, 59, at.second)
    assert day is not None and hour is not None and minute is not None and second is not None
    if interval == "year" and month is None:
        month = at.month
    if interval == "month":
        month = None  # a monthly anchor's month is the next occurrence's

    def occurrence(year: int, mon: int) -> int:
        last = calendar.monthrange(year, mon)[1]
        return int(datetime(year, mon, min(day, last), hour, minute, second, tzinfo=UTC).timestamp())

    year, mon = at.year, month or at.month
    anchor = occurrence(year, mon)
    while anchor < now:  # the next occurrence: next month (monthly) or next year (yearly)
        if month is None:
            year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
        else:
            year += 1
        anchor = occurrence(year, mon)
    config = {"day_of_month": day, "hour": as_int(raw, "hour"), "minute": as_int(raw, "minute"),
              "month": as_int(raw, "month"), "second": as_int(raw, "second")}
    return anchor, config
