"""The contract every connector passes, run against its emulator (or the fake).

Use it by subclassing ``ConnectorContract`` in a test module and providing a ``harness``
fixture that returns a ``ContractHarness`` for a fresh emulator::

    class TestStripeContract(ConnectorContract):
        @pytest.fixture
        def harness(self, stripe_emulator): return StripeHarness(stripe_emulator)

The harness inspects and mutates the system *directly* (emulator control surface or
in-process state), never through the connector under test.

Cases for a capability run on every connector that declares it (``connector.capabilities()``)
and are skipped for the others; their harness hooks (``now``, ``token_calls``,
``signed_delivery``) are needed only there.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from datetime import datetime

import pytest

from connectors.base import (
    Connector,
    OAuthCredentials,
    Outbound,
    Page,
    RetryableError,
    WebhookReceiver,
    WebhookRejected,
)


class ContractHarness(ABC):
    connector: Connector
    entity_type: str  # the canonical entity type the contract exercises

    @abstractmethod
    def seed(self, count: int) -> list[str]:
        """Create ``count`` records directly in the system; return their external ids."""

    @abstractmethod
    def modify(self, external_id: str) -> None:
        """Change a record directly in the system."""

    @abstractmethod
    def delete(self, external_id: str) -> None:
        """Delete (or void/archive, as the system allows) a record directly."""

    @abstractmethod
    def outbound(self, hub_id: str) -> Outbound:
        """A write of a brand-new record carrying the hub marker ``hub_id``."""

    @abstractmethod
    def count_marked(self, hub_id: str) -> int:
        """How many live records in the system carry ``hub_id`` (direct inspection)."""

    @abstractmethod
    def fail_next_write_after_apply(self) -> None:
        """The next write commits but the client sees an error (apply-then-fail)."""

    @abstractmethod
    def rate_limit_next(self, count: int, retry_after: float) -> None:
        """The next ``count`` requests are answered with the system's rate-limit response."""

    @abstractmethod
    def waits(self) -> list[float]:
        """Every wait (seconds) the connector took, from its injected sleep/clock."""

    def advance_clock(self, seconds: float) -> None:
        """Move the system's clock forward (past look-back windows). Default: nothing."""
        return None

    # -- only for connectors with OAuth credentials ------------------------------------------

    def now(self) -> datetime:
        """The system's clock (the connector's is the same)."""
        raise NotImplementedError

    def token_calls(self) -> int:
        """How many refresh-token requests the system's token endpoint has answered."""
        raise NotImplementedError

    # -- only for connectors that receive webhooks -----------------------------------------

    def signed_delivery(self) -> tuple[dict[str, str], bytes]:
        """Headers and raw body of one delivery signed as the system signs it, with an event."""
        raise NotImplementedError


def _drain(pages: object) -> tuple[list[str], list[str], str | None]:
    ids: list[str] = []
    deleted: list[str] = []
    cursor = None
    for page in pages:  # type: ignore[attr-defined]
        assert isinstance(page, Page)
        for record in page.records:
            (deleted if record.deleted else ids).append(record.external_id)
        if page.cursor is not None:
            cursor = page.cursor
    return ids, deleted, cursor


class ConnectorContract:
    """Behaviour every connector must show. Subclasses provide the ``harness`` fixture."""

    @pytest.fixture
    def harness(self) -> ContractHarness:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_full_fetch_returns_every_record_exactly_once(self, harness: ContractHarness) -> None:
        seeded = harness.seed(25)
        ids, _deleted, _ = _drain(harness.connector.fetch_all(harness.entity_type))
        assert sorted(set(ids)) == sorted(ids), "a record came back twice"
        assert set(seeded) <= set(ids)

    def test_changes_since_cursor_returns_only_what_changed(self, harness: ContractHarness) -> None:
        old = harness.seed(4)
        _ids, _deleted, cursor = _drain(harness.connector.fetch_changes(harness.entity_type, None))
        assert cursor is not None, "the last page of a read must carry a cursor"
        harness.advance_clock(3600)
        new = harness.seed(2)
        harness.modify(old[0])
        ids, _deleted, next_cursor = _drain(harness.connector.fetch_changes(harness.entity_type, cursor))
        assert set(new) | {old[0]} <= set(ids)
        assert not set(old[1:]) & set(ids), "unchanged records older than the cursor came back"
        assert next_cursor is not None

    def test_same_upsert_twice_gives_one_record(self, harness: ContractHarness) -> None:
        item = harness.outbound("hub-contract-twice")
        first = harness.connector.upsert(harness.entity_type, [item])
        second = harness.connector.upsert(harness.entity_type, [item])
        assert first[0].ok and second[0].ok, (first[0].error, second[0].error)
        assert first[0].external_id == second[0].external_id
        assert harness.count_marked("hub-contract-twice") == 1

    def test_lost_outcome_is_recovered_without_duplicate(self, harness: ContractHarness) -> None:
        item = harness.outbound("hub-contract-lost")
        harness.fail_next_write_after_apply()
        try:
            first = harness.connector.upsert(harness.entity_type, [item])
            assert not first[0].ok or harness.count_marked("hub-contract-lost") == 1
        except RetryableError:
            pass
        retry = dataclasses.replace(item, attempt=2)
        second = harness.connector.upsert(harness.entity_type, [retry])
        assert second[0].ok, second[0].error
        assert harness.count_marked("hub-contract-lost") == 1

    def test_rate_limit_answer_is_waited_out(self, harness: ContractHarness) -> None:
        harness.seed(3)
        harness.rate_limit_next(2, retry_after=2.0)
        ids, _deleted, _ = _drain(harness.connector.fetch_all(harness.entity_type))
        assert len(ids) >= 3
        assert sum(harness.waits()) >= 2.0, "the rate-limit answer was not waited out"

    def test_deletion_is_surfaced(self, harness: ContractHarness) -> None:
        (victim,) = harness.seed(1)
        _ids, _deleted, cursor = _drain(harness.connector.fetch_changes(harness.entity_type, None))
        harness.advance_clock(60)
        harness.delete(victim)
        ids, deleted, _ = _drain(harness.connector.fetch_changes(harness.entity_type, cursor))
        assert victim in deleted
        assert victim not in ids

    def test_lookup_finds_the_record_by_hub_marker(self, harness: ContractHarness) -> None:
        item = harness.outbound("hub-contract-lookup")
        (result,) = harness.connector.upsert(harness.entity_type, [item])
        assert result.ok, result.error
        found = harness.connector.lookup(harness.entity_type, "hub-contract-lookup")
        assert found is not None and found.external_id == result.external_id
        assert harness.connector.lookup(harness.entity_type, "hub-nobody") is None

    # ------------------------------------------------------------------ capabilities

    def test_credentials_are_refreshed_ahead_of_expiry(self, harness: ContractHarness) -> None:
        credentials = _credentials(harness.connector)
        credentials.refresh_credentials()  # the first access token
        first = credentials.credentials_expire_at()
        assert first is not None and first > harness.now()
        calls = harness.token_calls()
        credentials.refresh_credentials()
        assert harness.token_calls() == calls, "refreshed a token far from its expiry"
        # 60 s before expiry: inside every connector's refresh skew, the token still valid
        harness.advance_clock((first - harness.now()).total_seconds() - 60)
        credentials.refresh_credentials()
        assert harness.token_calls() == calls + 1, "not refreshed ahead of expiry"
        second = credentials.credentials_expire_at()
        assert second is not None and second > first
        credentials.refresh_credentials(force=True)
        assert harness.token_calls() == calls + 2
        assert not credentials.needs_reauth
        assert harness.connector.lookup(harness.entity_type, "hub-nobody") is None  # the new token works

    def test_webhook_signed_delivery_is_accepted_and_a_tampered_one_rejected(
            self, harness: ContractHarness) -> None:
        receiver = _webhooks(harness.connector)
        headers, body = harness.signed_delivery()
        events = receiver.verify_webhook(headers, body)
        assert events and all(e.event_id for e in events)
        assert [e.event_id for e in receiver.verify_webhook(headers, body)] == [e.event_id for e in events]
        for tampered in (body + b" ", body.replace(b"}", b', "x": 1}', 1)):
            with pytest.raises(WebhookRejected) as rejected:
                receiver.verify_webhook(headers, tampered)
            assert 400 <= rejected.value.status < 500
        with pytest.raises(WebhookRejected):
            receiver.verify_webhook({}, body)  # unsigned


def _credentials(connector: Connector) -> OAuthCredentials:
    credentials = connector.capabilities().credentials
    if credentials is None:
        pytest.skip(f"{connector.system} declares no OAuth credentials")
    return credentials


def _webhooks(connector: Connector) -> WebhookReceiver:
    receiver = connector.capabilities().webhooks
    if receiver is None:
        pytest.skip(f"{connector.system} receives no webhooks")
    return receiver
