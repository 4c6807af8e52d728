"""Config keys of a Salesforce connection (system = "salesforce")."""

from connectors.settings import RETRY_KEYS, Key, existing_file

KEYS = {
    "instance_url": Key(str, help="https://yourorg.my.salesforce.com; hub connect stores the org's from the token "
                                  "answer (it wins), so set it only for a connection not made with hub connect"),
    "client_id": Key(str, required=True, secret=True),
    "client_secret": Key(str, required=True, secret=True),
    "refresh_token": Key(str, secret=True, help="initial refresh token"),
    "token_url": Key(str, default="https://login.salesforce.com/services/oauth2/token"),
    "authorize_url": Key(str, default="https://login.salesforce.com/services/oauth2/authorize",
                         help="hub connect's consent page (a sandbox: test.salesforce.com)"),
    "revoke_url": Key(str, default="https://login.salesforce.com/services/oauth2/revoke",
                      help="hub disconnect revokes the grant here"),
    "api_version": Key(str, default="59.0"),
    "ca_bundle": Key(str, check=existing_file, help="PEM file to trust (e.g. the emulator's certificate)"),
    "budget_share": Key(float, default=0.8, above=0, maximum=1, help="stop scheduled work above this share of the daily API allocation"),
    "timeout_seconds": Key(float, default=60.0, above=0),
    "hub_id_field": Key(str, default="Hub_Id__c"),
    "invoice_object": Key(str, default="Billing_Invoice__c"),
    "overlap_seconds": Key(int, default=60, minimum=0),
}
KEYS.update({
    "email_field": Key(str, help="Account field holding the billing email (e.g. Billing_Email__c); "
                                 "unset = the first Contact with an email"),
    "default_currency": Key(str, help="currency of records that carry no CurrencyIsoCode (default USD); a "
                                      "single-currency org's own currency replaces it, and must match it if set"),
    "pricebook_id": Key(str, help="Pricebook2 Id for new PricebookEntry records (default: the org's standard)"),
    "rate_per_second": Key(float, default=20.0, above=0, help="client-side request rate"),
    "concurrency": Key(int, default=10, minimum=1, help="requests in flight at once"),
    "budget_probe_seconds": Key(int, default=300, above=0,
                                help="while paused for budget, how often to re-read API usage"),
    "session_seconds": Key(float, default=7200.0, above=0,
                           help="the org's session timeout (Setup > Session Settings); the token job "
                                "refreshes a session this long after it was issued, less the skew"),
    "refresh_skew_seconds": Key(float, default=300.0, minimum=0, help="refresh this long before the session times out"),
})
KEYS.update(RETRY_KEYS)
