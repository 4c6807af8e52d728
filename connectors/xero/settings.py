"""Config keys of a Xero connection (system = "xero")."""

from connectors.settings import RETRY_KEYS, Key

KEYS = {
    "client_id": Key(str, required=True, secret=True),
    "client_secret": Key(str, required=True, secret=True),
    "tenant_id": Key(str, help="the organisation's tenant id (see /connections); hub connect stores the one "
                               "consented to (it wins), so set it only for a connection not made with hub connect"),
    "refresh_token": Key(str, secret=True, help="initial refresh token; rotated ones live encrypted in the database"),
    "api_base": Key(str, default="https://api.xero.com"),
    "identity_base": Key(str, default="https://api.xero.com"),
    "token_url": Key(str, default="https://identity.xero.com/connect/token"),
    "authorize_url": Key(str, default="https://login.xero.com/identity/connect/authorize",
                         help="hub connect's consent page"),
    "revoke_url": Key(str, default="https://identity.xero.com/connect/revocation",
                      help="hub disconnect revokes the grant here"),
    "webhook_key": Key(str, secret=True),
    "rate_limit_per_minute": Key(float, default=60.0, above=0),
    "concurrency": Key(int, default=5, minimum=1),
    "batch_size": Key(int, default=50, minimum=1),
    "timeout_seconds": Key(float, default=60.0, above=0),
    "sales_account_code": Key(str, default="200"),
    "payment_account_code": Key(str, default="090", help="the clearing account's older name (the bank account "
                                                         "payments go to and refunds are paid from); used "
                                                         "when clearing_account_code is unset"),
    # The posting model (README "Fees and payouts"): Stripe's balance is a bank account of its own.
    "clearing_account_code": Key(str, help="code of the bank account (e.g. \"Stripe\") payments go to, refunds "
                                            "are paid from and payouts leave; unset: payment_account_code"),
    "payout_bank_account_code": Key(str, help="code of the bank account Stripe payouts land in; payouts are held "
                                               "until it is set"),
    "fee_account_code": Key(str, default="404", help="expense account Stripe's fees are booked to (Xero's "
                                                      "standard chart: 404 Bank Fees)"),
    "fee_tax_type": Key(str, default="NONE", help="TaxType of the fee line (Stripe's fees carry no VAT in most "
                                                  "countries)"),
    "overlap_seconds": Key(int, default=300, minimum=0),
    "page_size": Key(int, default=1000, minimum=1, maximum=1000, help="records per GET page (Xero allows up to 1000)"),
    "refresh_skew_seconds": Key(float, default=120.0, minimum=0, help="refresh this long before the access token expires"),
    # Deprecated for [tax_codes.xero] (the one table the push's pre-flight and the mapping read):
    # still read for one release, folded into [tax_codes.xero] and refused where they disagree.
    "tax_types": Key(dict, help="deprecated: set [tax_codes.xero] instead"),
    "tax_codes": Key(dict, default={}, help="filled from [tax_codes.xero]; set the codes there"),
}
KEYS.update(RETRY_KEYS)
