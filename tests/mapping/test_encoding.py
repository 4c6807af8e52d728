"""``mapping.encoding.uuid5_text`` makes the hub's ids and idempotency keys without ``uuid.UUID``:
its text must be exactly ``str(uuid.uuid5(...))``, or every stored hub id (``stable_id``) and
queued write's key (``idempotency_key``) would change on upgrade: a re-read record would become
a second hub record, a retried write a second write."""

from __future__ import annotations

import uuid

import pytest

from mapping.encoding import uuid5_text
from mapping.model import stable_id
from sync.context import idempotency_key

NAMES = ["", "a", "stripe/customer/cus_1", "é/ü/漢字/\u2028", "x" * 1000, "\x00\xff", "quickbooks/invoice/42"]


@pytest.mark.parametrize("namespace", [uuid.NAMESPACE_DNS, uuid.NAMESPACE_URL,
                                       uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")])
@pytest.mark.parametrize("name", NAMES)
def test_uuid5_text_is_the_standard_uuid5(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


def test_hub_ids_and_keys_are_the_ones_stored_before() -> None:
    """The texts the code made with ``str(uuid.uuid5(...))`` (43b5d31), pinned."""
    assert stable_id("stripe", "customer", "cus_1") == "d73dead9-680d-5223-81d6-ad43b8270301"
    assert idempotency_key("hub-1", "xero", "d" * 64) == "d6e4a038-d2e8-5f77-aa0f-d90b45e56222"
