"""Salesforce's wire shapes: the error answer, record ids, datetimes, JSON replies and how a
stored record is rendered (``attributes`` plus field values)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from connectors.salesforce.emulator.schema import SObject
from mapping import exact_json

_CHECK_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


class SfError(Exception):
    """A Salesforce error answer: HTTP status plus one ``{errorCode, message, fields}``."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    def rest_body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]

    def collection_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def not_found() -> SfError:
    return SfError(404, "NOT_FOUND", "The requested resource does not exist")


def id18(id15: str) -> str:
    """The case-insensitive 18-character form of a 15-character Salesforce id."""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(id15[chunk * 5:chunk * 5 + 5]) if c.isupper())
        suffix += _CHECK_CHARS[bits]
    return id15 + suffix


# The org and its one user (the integration user every session acts as): the ids the token
# answer's ``id`` URL names, the ``Organization`` row and every record's owner and creator.
ORG_ID = id18("00D5g000000EMUL")
USER_ID = id18("0055g000000EMUL")


def sf_datetime(value: datetime) -> str:
    """Salesforce's datetime format: ``2026-11-01T12:00:00.000+0000``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    text = text.strip().replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON reply through the exact codec (Decimal amounts stay exact on the wire)."""
    return web.Response(text=exact_json.dumps(body), status=status, content_type="application/json",
                        headers=headers)


def record_url(version: str, sobject: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"


def wire_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return sf_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def render(version: str, obj: SObject, record: dict[str, Any],
           fields: list[str] | None = None) -> dict[str, Any]:
    """A stored record as the REST API returns it: every field unless ``fields`` names some."""
    out: dict[str, Any] = {"attributes": {"type": obj.name,
                                          "url": record_url(version, obj.name, record["Id"])}}
    for name in fields or list(obj.fields):
        out[name] = wire_value(record.get(name))
    return out
