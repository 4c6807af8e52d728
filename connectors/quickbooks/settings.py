"""Config keys of a QuickBooks Online connection (system = "quickbooks")."""

from connectors.settings import RETRY_KEYS, Key

KEYS = {
    "realm_id": Key(str, help="the company id; hub connect stores the one the person picked (it wins), "
                              "so set it only for a connection not made with hub connect"),
    "client_id": Key(str, required=True, secret=True),
    "client_secret": Key(str, required=True, secret=True),
    "refresh_token": Key(str, secret=True, help="initial refresh token; rotated ones live encrypted in the database"),
    "api_base": Key(str, default="https://quickbooks.api.intuit.com"),
    "discovery_url": Key(str, default="https://developer.api.intuit.com/.well-known/openid_configuration"),
    "token_url": Key(str, default="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"),
    "authorize_url": Key(str, default="https://appcenter.intuit.com/connect/oauth2", help="hub connect's consent page"),
    "revoke_url": Key(str, default="https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
                      help="hub disconnect revokes the grant here"),
    "webhook_verifier_token": Key(str, secret=True),
    "minor_version": Key(int, default=75, minimum=1),
    "rate_limit_per_minute": Key(float, default=500.0, above=0),
    "concurrency": Key(int, default=10, minimum=1),
    "batch_size": Key(int, default=30, minimum=1, maximum=30),
    "timeout_seconds": Key(float, default=60.0, above=0),
    "home_currency": Key(str, help="read from the company's Preferences; if set, a check that refuses to "
                                    "sync when the company says otherwise"),
}
KEYS.update({
    "retry_after_seconds": Key(float, default=60.0, minimum=0, help="wait after a 429 (QBO sends no Retry-After)"),
    "batch_per_minute": Key(float, default=40.0, above=0, help="client-side cap on /batch calls per minute"),
    "page_size": Key(int, default=1000, minimum=1, maximum=1000, help="query MAXRESULTS (QBO caps at 1000)"),
    "refresh_skew_seconds": Key(float, default=300.0, minimum=0, help="refresh this long before the access token expires"),
    "income_account_id": Key(str, default="1", help="IncomeAccountRef for service items the hub creates"),
    # The posting model (README "Fees and payouts"): Stripe's balance is a bank account of its own.
    "clearing_account_id": Key(str, help="Account Id (type Bank, e.g. \"Stripe clearing\") that payments are "
                                          "deposited to, refund receipts paid from and payouts leave; unset: "
                                          "deposit_account_id"),
    "deposit_account_id": Key(str, default="2", help="the clearing account's older name (DepositToAccountRef of "
                                                     "payments and refund receipts); used when "
                                                     "clearing_account_id is unset"),
    "payout_bank_account_id": Key(str, help="Account Id of the bank account Stripe payouts land in (the "
                                             "Transfer's ToAccountRef); payouts are held until it is set"),
    "fee_account_id": Key(str, help="expense Account Id Stripe's fees are booked to (the Purchase line of a "
                                     "payout); payouts are held until it is set"),
})
# [tax_codes.quickbooks], put here by sync/config.py (mapping/tax_codes.py reads it)
KEYS["tax_codes"] = Key(dict, default={}, help="filled from [tax_codes.quickbooks]; set the codes there")
KEYS.update(RETRY_KEYS)
