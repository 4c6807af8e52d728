"""``/reports/{name}`` in Intuit's report JSON (issue 19, item 3): ProfitAndLoss computed from
the company's documents with exact decimals (Total and by Days), CustomerBalance from the open
balances, AgedReceivables by days past due, Intuit's other reports empty in the right shape, an
unknown report a 400 Fault."""

from __future__ import annotations

from typing import Any

import requests

from tests.connectors.quickbooks.conftest import QboEnv

TOKEN = "AT-reports"


def _get(qbo_env: QboEnv, name: str, **params: str) -> requests.Response:
    url = f"{qbo_env.running.base_url}/v3/company/{qbo_env.realm.realm_id}/reports/{name}"
    return requests.get(url, params=params, headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
                        timeout=10)


def _rows(report: dict[str, Any]) -> dict[str, list[str]]:
    """Each data or summary row's first cell -> its other cells (Report.xsd's Row/ColData)."""
    out: dict[str, list[str]] = {}

    def walk(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            walk((row.get("Rows") or {}).get("Row") or [])
            for part in (row.get("ColData") and row, row.get("Summary")):
                if part:
                    out[part["ColData"][0]["value"]] = [c["value"] for c in part["ColData"][1:]]
    walk((report.get("Rows") or {}).get("Row") or [])
    return out


def _line(item: str, amount: str) -> dict[str, Any]:
    return {"DetailType": "SalesItemLineDetail", "Amount": amount,
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "TaxCodeRef": {"value": "NON"}}}


def _company(qbo_env: QboEnv) -> dict[str, Any]:
    ids = qbo_env.seed(access_tokens=[TOKEN], Account=[{"Name": "Bank fees", "AccountType": "Expense"}],
                       Customer=[{"DisplayName": "Report Co"}], Item=[{"Name": "Plan"}],
                       ExchangeRate=[{"SourceCurrencyCode": "EUR", "Rate": "1.1", "AsOfDate": "2026-10-01"}])
    (fees,), (customer,), (item,) = ids["Account"], ids["Customer"], ids["Item"]
    ref = {"value": customer}
    qbo_env.seed(Invoice=[
        {"CustomerRef": ref, "TxnDate": "2026-10-05", "Line": [_line(item, "300.00")]},
        {"CustomerRef": ref, "TxnDate": "2026-10-06", "Line": [_line(item, "99.99")]},
        {"CustomerRef": ref, "TxnDate": "2026-10-06", "CurrencyRef": {"value": "EUR"}, "Line": [_line(item, "100.00")]},
        {"CustomerRef": ref, "TxnDate": "2026-09-30", "Line": [_line(item, "1000.00")]}],  # before the range
        CreditMemo=[{"CustomerRef": ref, "TxnDate": "2026-10-06", "Line": [_line(item, "50.00")]}])
    qbo_env.on_loop(lambda: qbo_env.emulator.save(qbo_env.realm, "Purchase", {
        "AccountRef": {"value": "2"}, "PaymentType": "Cash", "TxnDate": "2026-10-05",
        "Line": [{"DetailType": "AccountBasedExpenseLineDetail", "Amount": "12.34",
                  "AccountBasedExpenseLineDetail": {"AccountRef": {"value": fees}}}]}))
    return {"customer": customer}


def test_profit_and_loss_is_computed_from_the_documents_exactly(qbo_env: QboEnv) -> None:
    _company(qbo_env)
    reply = _get(qbo_env, "ProfitAndLoss", start_date="2026-10-01", end_date="2026-10-31")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert {k: body["Header"][k] for k in ("ReportName", "ReportBasis", "StartPeriod", "EndPeriod", "Currency")} == \
        {"ReportName": "ProfitAndLoss", "ReportBasis": "Accrual", "StartPeriod": "2026-10-01",
         "EndPeriod": "2026-10-31", "Currency": "USD"}
    assert [c["ColType"] for c in body["Columns"]["Column"]] == ["Account", "Money"]
    rows = _rows(body)  # 300.00 + 99.99 + 110.00 (EUR 100.00 at 1.1) - 50.00 credit; fees 12.34
    assert rows == {"Services": ["459.99"], "Total Income": ["459.99"], "Gross Profit": ["459.99"],
                    "Bank fees": ["12.34"], "Total Expenses": ["12.34"], "Net Operating Income": ["447.65"],
                    "Net Income": ["447.65"]}
    assert [r["group"] for r in body["Rows"]["Row"]] == ["Income", "GrossProfit", "Expenses", "NetOperatingIncome",
                                                         "NetIncome"]


def test_profit_and_loss_by_days_has_a_dated_column_a_day(qbo_env: QboEnv) -> None:
    _company(qbo_env)
    body = _get(qbo_env, "ProfitAndLoss", start_date="2026-10-04", end_date="2026-10-06",
                summarize_column_by="Days").json()
    columns = body["Columns"]["Column"]
    starts = [next((m["Value"] for m in c["MetaData"] if m["Name"] == "StartDate"), None) for c in columns]
    assert starts == [None, "2026-10-04", "2026-10-05", "2026-10-06", None]
    assert [c["ColTitle"] for c in columns] == ["", "Oct 4, 2026", "Oct 5, 2026", "Oct 6, 2026", "Total"]
    rows = _rows(body)
    assert rows["Services"] == ["", "300.00", "159.99", "459.99"]
    assert rows["Net Income"] == ["", "287.66", "159.99", "447.65"]


def test_customer_balance_other_reports_and_an_unknown_one(qbo_env: QboEnv) -> None:
    ids = _company(qbo_env)
    body = _get(qbo_env, "CustomerBalance").json()
    # open: 300.00 + 99.99 + 100.00 EUR (in its own currency, as Customer.Balance) + 1000.00 - 50.00
    assert _rows(body) == {"Report Co": ["1449.99"], "TOTAL": ["1449.99"]}
    assert body["Rows"]["Row"][0]["ColData"][0]["id"] == ids["customer"]
    for name in ("BalanceSheet", "TrialBalance", "AgedReceivableDetail", "GeneralLedger"):
        empty = _get(qbo_env, name).json()
        assert empty["Rows"] == {} and empty["Header"]["ReportName"] == name, name
        assert {"Name": "NoReportData", "Value": "true"} in empty["Header"]["Option"]
        assert all({"ColTitle", "ColType", "MetaData"} <= set(c) for c in empty["Columns"]["Column"])
    unknown = _get(qbo_env, "Horoscope")
    assert unknown.status_code == 400 and unknown.json()["Fault"]["Error"][0]["code"] == "4000"


def test_aged_receivables_puts_open_amounts_in_their_buckets(qbo_env: QboEnv) -> None:
    _company(qbo_env)
    body = _get(qbo_env, "AgedReceivables", report_date="2026-11-04").json()
    assert [c["ColTitle"] for c in body["Columns"]["Column"]] == \
        ["", "Current", "1 - 30", "31 - 60", "61 - 90", "91 and over", "Total"]
    # 1 - 30: 300.00 (Oct 5) + 99.99 + 100.00 (Oct 6) less the 50.00 credit memo; 31 - 60: Sep 30
    assert _rows(body) == {"Report Co": ["", "449.99", "1000.00", "", "", "1449.99"],
                           "TOTAL": ["0.00", "449.99", "1000.00", "0.00", "0.00", "1449.99"]}
    earlier = _rows(_get(qbo_env, "AgedReceivables", report_date="2026-10-05").json())
    assert earlier["Report Co"] == ["300.00", "1000.00", "", "", "", "1300.00"]  # Oct 6 not yet there
