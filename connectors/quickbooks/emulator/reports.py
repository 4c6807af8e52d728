"""``GET /v3/company/{realm}/reports/{ReportName}`` in Intuit's report shape (Report.xsd: a
``Header``, ``Columns.Column[]`` of ``ColTitle``/``ColType``/``MetaData``, ``Rows.Row[]`` of
``Section`` rows with ``Header``/``Rows``/``Summary`` and ``Data`` rows of ``ColData``), computed
from the company's documents with exact decimals.

* ``ProfitAndLoss`` (accrual): income by the income account of each sales line (invoices, less
  credit memos and refund receipts; discounts as "Discounts given"), expenses by the account of
  each ``Purchase`` line, in the home currency (a foreign document's lines at its
  ``ExchangeRate``), by ``TxnDate`` between ``start_date`` and ``end_date`` (default: this month
  to date), ``summarize_column_by`` ``Total`` (default), ``Days`` or ``Month``: one money column a
  period (``MetaData`` ``StartDate``/``EndDate``/``ColKey``) and a ``Total``. Sections Income,
  GrossProfit, Expenses, NetOperatingIncome, NetIncome; accounts with no activity are left out, a
  cell without activity is ``""``.
* ``CustomerBalance``: each customer's open balance (``Customer.Balance``) and the total.
* ``AgedReceivables`` at ``report_date`` (default today): each customer's open invoice balances
  by days past their ``DueDate`` (their ``TxnDate`` without one) in Current, 1 - 30, 31 - 60,
  61 - 90, 91 and over, its unused credit (credit memos' ``RemainingCredit``, payments'
  ``UnappliedAmt``) aged by date as negative amounts, and a Total; documents dated after the
  report date are left out.
* Intuit's other reports: the right shape with no rows (``NoReportData`` true), as an empty
  company answers. A name that is no report of Intuit's is 400 (code 4000 as for an unknown
  entity).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.wire import PACIFIC, Fault, cents, money, qbo_time

# Intuit's Reports API endpoints (developer.intuit.com "Run reports"); all but two answer empty
REPORT_NAMES = (
    "AccountList", "AgedPayableDetail", "AgedPayables", "AgedReceivableDetail", "AgedReceivables",
    "BalanceSheet", "CashFlow", "ClassSales", "CustomerBalance", "CustomerBalanceDetail", "CustomerIncome",
    "CustomerSales", "DepartmentSales", "GeneralLedger", "GeneralLedgerFR", "InventoryValuationDetail",
    "InventoryValuationSummary", "ItemSales", "JournalReport", "ProfitAndLoss", "ProfitAndLossDetail",
    "SalesByProduct", "TaxSummary", "TransactionList", "TransactionListByCustomer", "TransactionListByVendor",
    "TransactionListWithSplits", "TrialBalance", "VendorBalance", "VendorBalanceDetail", "VendorExpenses")
INCOME_SIGN = {"Invoice": 1, "CreditMemo": -1, "RefundReceipt": -1}
Period = tuple[date, date, str]  # first day, last day, column title


def report(realm: Realm, name: str, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
    known = {n.lower(): n for n in REPORT_NAMES}
    if name.lower() not in known:
        raise Fault(4000, "Unsupported Operation", f"Report {name} is not supported", status=400)
    name = known[name.lower()]
    today = now.astimezone(PACIFIC).date()
    start = _date(params.get("start_date"), today.replace(day=1))
    end = _date(params.get("end_date"), today)
    by = params.get("summarize_column_by") or "Total"
    header: dict[str, Any] = {"Time": qbo_time(now), "ReportName": name, "ReportBasis": "Accrual",
                              "StartPeriod": start.isoformat(), "EndPeriod": end.isoformat(),
                              "SummarizeColumnsBy": by, "Currency": realm.home_currency}
    if name == "ProfitAndLoss":
        columns, rows = _profit_and_loss(realm, start, end, _periods(start, end, by))
    elif name == "CustomerBalance":
        columns, rows = _customer_balance(realm)
    elif name == "AgedReceivables":
        on = _date(params.get("report_date"), today)
        header.update(StartPeriod=on.isoformat(), EndPeriod=on.isoformat())
        columns, rows = _aged_receivables(realm, on)
    else:
        columns, rows = [_column("", "Account", "account"), _column("Total", "Money", "total")], []
    header["Option"] = [{"Name": "AccountingStandard", "Value": "GAAP"},
                        {"Name": "NoReportData", "Value": "false" if rows else "true"}]
    return {"Header": header, "Columns": {"Column": columns}, "Rows": {"Row": rows} if rows else {}}


def _date(value: str | None, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise Fault(2010, "Invalid Date", f"{value!r} is not a date (yyyy-MM-dd)") from None


def _periods(start: date, end: date, by: str) -> list[Period]:
    if by == "Total":
        return []
    if by not in ("Days", "Month"):
        raise Fault(2010, "Invalid Enumeration", f"summarize_column_by {by!r} is not supported")
    out: list[Period] = []
    day = start
    while day <= end:
        if by == "Days":
            last = day
            title = f"{day:%b} {day.day}, {day.year}"
        else:
            following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            last = min(end, following - timedelta(days=1))
            title = f"{day:%b %Y}"
        out.append((day, last, title))
        day = last + timedelta(days=1)
    return out


def _column(title: str, kind: str, key: str, period: Period | None = None) -> dict[str, Any]:
    meta = [{"Name": "StartDate", "Value": period[0].isoformat()},
            {"Name": "EndDate", "Value": period[1].isoformat()}] if period else []
    return {"ColTitle": title, "ColType": kind, "MetaData": [*meta, {"Name": "ColKey", "Value": key}]}


def _cell(value: Decimal | None) -> dict[str, str]:
    return {"value": "" if value is None else str(cents(value))}


def _postings(realm: Realm) -> Iterable[tuple[str, str, date, Decimal]]:
    """(section, account name, date, home-currency amount) of every P&L posting."""
    accounts = realm.table("Account")
    items = realm.table("Item")
    for entity, sign in INCOME_SIGN.items():
        for doc in realm.tables.get(entity, {}).values():
            rate, on = money(doc.get("ExchangeRate") or 1), date.fromisoformat(str(doc["TxnDate"])[:10])
            for line in doc.get("Line") or []:
                kind = line.get("DetailType")
                if kind == "SalesItemLineDetail":
                    item = items.get(str(((line.get(kind) or {}).get("ItemRef") or {}).get("value")), {})
                    account = accounts.get(str((item.get("IncomeAccountRef") or {}).get("value", "1")), {})
                    yield "Income", str(account.get("Name") or "Services"), on, sign * cents(money(line["Amount"]) * rate)
                elif kind == "DiscountLineDetail":
                    yield "Income", "Discounts given", on, -sign * cents(money(line["Amount"]) * rate)
    for doc in realm.tables.get("Purchase", {}).values():
        on = date.fromisoformat(str(doc["TxnDate"])[:10])
        rate = money(doc.get("ExchangeRate") or 1)
        for line in doc.get("Line") or []:
            ref = ((line.get("AccountBasedExpenseLineDetail") or {}).get("AccountRef") or {}).get("value")
            account = accounts.get(str(ref), {})
            yield "Expenses", str(account.get("Name") or "Expenses"), on, cents(money(line["Amount"]) * rate)


def _profit_and_loss(realm: Realm, start: date, end: date,
                     periods: list[Period]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    columns = [_column("", "Account", "account")]
    columns += [_column(period[2], "Money", period[2], period) for period in periods]
    columns.append(_column("Total", "Money", "total"))
    slots = len(periods) + 1  # the periods, then the total
    cells: dict[str, dict[str, list[Decimal | None]]] = {"Income": defaultdict(lambda: [None] * slots),
                                                         "Expenses": defaultdict(lambda: [None] * slots)}
    for section, account, on, amount in _postings(realm):
        if not start <= on <= end:
            continue
        row = cells[section][account]
        for index, (first, last, _title) in enumerate(periods):
            if first <= on <= last:
                row[index] = (row[index] or Decimal(0)) + amount
        row[-1] = (row[-1] or Decimal(0)) + amount

    def total(section: str) -> list[Decimal | None]:
        values = list(cells[section].values())
        return [None if all(v[i] is None for v in values) else sum((v[i] or Decimal(0) for v in values), Decimal(0))
                for i in range(slots)]

    def minus(a: list[Decimal | None], b: list[Decimal | None]) -> list[Decimal | None]:
        return [None if x is None and y is None else (x or Decimal(0)) - (y or Decimal(0)) for x, y in zip(a, b, strict=True)]

    def summary(title: str, values: list[Decimal | None], group: str) -> dict[str, Any]:
        return {"Summary": {"ColData": [{"value": title}, *map(_cell, values)]}, "type": "Section", "group": group}

    def block(title: str, group: str) -> dict[str, Any]:
        data = [{"ColData": [{"value": account, "id": _account_id(realm, account)}, *map(_cell, values)],
                 "type": "Data"} for account, values in sorted(cells[group].items())]
        return {"Header": {"ColData": [{"value": title}, *({"value": ""} for _ in range(slots))]},
                "Rows": {"Row": data}, **summary(f"Total {title}", total(group), group)}

    if not cells["Income"] and not cells["Expenses"]:
        return columns, []
    income, expenses = total("Income"), total("Expenses")
    net = minus(income, expenses)
    rows = [block("Income", "Income"), summary("Gross Profit", income, "GrossProfit")]
    if cells["Expenses"]:
        rows.append(block("Expenses", "Expenses"))
    rows += [summary("Net Operating Income", net, "NetOperatingIncome"), summary("Net Income", net, "NetIncome")]
    return columns, rows


def _account_id(realm: Realm, name: str) -> str:
    return next((str(a["Id"]) for a in realm.table("Account").values() if a.get("Name") == name), "")


def _customer_balance(realm: Realm) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    columns = [_column("", "Customer", "customer"), _column("Total", "Money", "total")]
    owing = [(c["DisplayName"], str(c["Id"]), money(c.get("Balance"))) for c in realm.table("Customer").values()
             if money(c.get("Balance"))]
    if not owing:
        return columns, []
    rows: list[dict[str, Any]] = [{"ColData": [{"value": name, "id": cid}, _cell(balance)], "type": "Data"}
                                  for name, cid, balance in sorted(owing)]
    rows.append({"Summary": {"ColData": [{"value": "TOTAL"}, _cell(sum((b for _n, _i, b in owing), Decimal(0)))]},
                 "type": "Section", "group": "GrandTotal"})
    return columns, rows


AGING = ("Current", "1 - 30", "31 - 60", "61 - 90", "91 and over")
OPEN = (("Invoice", "Balance", 1), ("CreditMemo", "RemainingCredit", -1), ("Payment", "UnappliedAmt", -1))


def _bucket(days_past: int) -> int:
    return 0 if days_past <= 0 else min(4, (days_past - 1) // 30 + 1)


def _aged_receivables(realm: Realm, on: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    columns = [_column("", "Customer", "customer")]
    columns += [_column(title, "Money", title.replace(" ", "").lower()) for title in AGING]
    columns.append(_column("Total", "Money", "total"))
    customers = realm.table("Customer")
    aged: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(AGING))
    for entity, key, sign in OPEN:
        for doc in realm.tables.get(entity, {}).values():
            amount = money(doc.get(key))
            if not amount or date.fromisoformat(str(doc["TxnDate"])[:10]) > on:
                continue
            due = date.fromisoformat(str(doc.get("DueDate") or doc["TxnDate"])[:10])
            aged[str(doc["CustomerRef"]["value"])][_bucket((on - due).days)] += sign * amount
    if not aged:
        return columns, []
    rows: list[dict[str, Any]] = []
    totals = [Decimal(0)] * len(AGING)
    for cid, values in sorted(aged.items(), key=lambda kv: str(customers.get(kv[0], {}).get("DisplayName", kv[0]))):
        name = str(customers.get(cid, {}).get("DisplayName", cid))
        rows.append({"ColData": [{"value": name, "id": cid}, *(_cell(v) if v else {"value": ""} for v in values),
                                 _cell(sum(values, Decimal(0)))], "type": "Data"})
        totals = [t + v for t, v in zip(totals, values, strict=True)]
    rows.append({"Summary": {"ColData": [{"value": "TOTAL"}, *map(_cell, totals), _cell(sum(totals, Decimal(0)))]},
                 "type": "Section", "group": "GrandTotal"})
    return columns, rows
