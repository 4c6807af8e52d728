"""Config keys of a Stripe connection ([connections.NAME] with system = "stripe")."""

from connectors.settings import RETRY_KEYS, Key

KEYS = {
    "api_key": Key(str, required=True, secret=True, help="Stripe secret key"),
    "api_base": Key(str, default="https://api.stripe.com"),
    "webhook_secret": Key(str, secret=True, help="whsec_… of the webhook endpoint"),
    "rate_limit_per_second": Key(float, default=25.0, above=0),
    "timeout_seconds": Key(float, default=30.0, above=0),
    "events_overlap_seconds": Key(int, default=60, minimum=0),
    "page_limit": Key(int, default=100, minimum=1, maximum=100, help="list page size (Stripe allows at most 100)"),
}
KEYS.update(RETRY_KEYS)
