"""Fixtures for the peer-conformance tests: the peers' venvs, and the Stripe account and the Xero
organisation they read (``stripe_account``, ``xero_org``, each set up once a session)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.peers.stripe_account import stripe_account  # noqa: F401  (a fixture)
from tests.peers.venvs import PeerVenv, peer_venv
from tests.peers.xero_org import xero_org  # noqa: F401  (a fixture)


@pytest.fixture(scope="session")
def peers() -> Callable[[str], PeerVenv]:
    """``peers(name)``: the peer's venv (``venvs.PEERS``), installed on first use."""
    return peer_venv
