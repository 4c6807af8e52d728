"""Config keys of the in-memory fake connection (tests only)."""

from connectors.settings import Key

KEYS = {
    "api_key": Key(str, secret=True),
}
