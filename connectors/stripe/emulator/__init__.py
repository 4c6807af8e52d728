"""The Stripe emulator, split by job:

* ``app``: the aiohttp app (routes, API-key check, rate limit, idempotent replays, ``expand[]``,
  the ``/__emulator/`` control calls and seeding), ``StripeEmulator`` itself;
* ``store``: objects by kind, events, signed webhook deliveries, list and search;
  ``wire``: the form encoding, the error envelope, list envelopes, search queries, ids;
* ``strict``: what each operation takes and can expand (400 otherwise), unknown paths (404),
  Bearer or Basic keys, from ``params.json``, which ``gen_params`` makes from Stripe's spec;
  ``includes``: the fields only ``expand[]`` fills (``customer.sources``, ``charge.refunds``);
* ``catalog``: customers, products, prices, tax rates; ``events``: the event feed and webhook
  endpoints; ``meters``: meters, meter events and their summaries;
* billing, each part built on the one below: ``money`` (rounding, currency exponents, FX),
  ``payments`` (charges, refunds), ``invoices`` (items, tax maths, finalise, pay, void),
  ``credit_notes`` and ``subscriptions`` (proration, renewals, metered usage in arrears),
  ``anchors`` (billing periods, ``billing_cycle_anchor[_config]``), ``collection`` (which payment
  method pays, declines, the retry schedule, ``incomplete``/``past_due``), ``auto_tax``
  (``automatic_tax``: Stripe Tax from the customer's location and tax ids), ``invoice_payments``
  (which payment paid which invoice: ``/v1/invoice_payments``, ``invoice.payments``);
* beside billing (wired together by ``more``): ``balances`` (customer balance transactions),
  ``payment_methods``, ``intents`` (payment intents and charges created directly), ``disputes``
  (and transfers), ``realism`` (search lag, idempotency-key expiry, credit note lines paged,
  switchable).
* the account itself: ``accounts`` (``/v1/account``, the ``Stripe-Account`` header), ``plans``
  (recurring prices read as plans), ``empty_lists`` (the kinds it has none of: Issuing,
  Checkout, Connect ... listed empty, as an empty account lists them).

Callers import the public names from here.
"""

from connectors.stripe.emulator.app import StripeEmulator
from connectors.stripe.emulator.wire import StripeAPIError, decode_form, parse_search, sign_payload

__all__ = [
    "StripeAPIError",
    "StripeEmulator",
    "decode_form",
    "parse_search",
    "sign_payload",
]
