"""What a ledger books for Stripe's credit notes, refunds and negative invoices (README "Posting
model"). Pure: given the hub records, the lines of the one ledger document each posts.

* A refund claimed by a credit note is booked with the credit note's lines and tax (prorated
  when it refunds only part of it); the credit note then posts only what the refund did not
  pay out, so no credit is ever booked twice.
* A refund no credit note claims is booked with its tax reversed: the amount split into net and
  tax at the invoice's rates, in proportion to the invoice's lines.
* A negative invoice (a downgrade's proration) is a credit note with the lines negated.

Every split is exact in minor units: shares of the gross by largest remainder, each share's tax
rounded half up, the net the rest, so the parts always sum to the amount asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from mapping.line_taxes import negated, taxes_part
from mapping.lines import line_discounts
from mapping.model import CreditNote, Discount, Invoice, InvoiceLine, NoteRefund, Refund, stable_id
from mapping.money import Money


def _gross(line: InvoiceLine, inclusive: bool) -> int:
    tax = line.tax_amount.minor if line.tax_amount else 0
    return line.amount.minor + (0 if inclusive or line.tax_inclusive else tax)


def _line(like: InvoiceLine, net: int, tax: int | None, currency: str) -> InvoiceLine:
    """A part of ``like``, tax-exclusive, keeping what its tax code is chosen by (rate, reason,
    country and state; each of its taxes, with its share of the part's tax, when it has several)."""
    amount = Money(net, currency)
    return InvoiceLine(description=like.description, quantity=Decimal(1), unit_amount=amount, amount=amount,
                       product_id=like.product_id, price_id=like.price_id, tax_rate=like.tax_rate,
                       tax_amount=Money(tax, currency) if tax is not None else None,
                       tax_reason=like.tax_reason, tax_country=like.tax_country, tax_state=like.tax_state,
                       taxable_amount=amount if tax is not None and like.taxable_amount is not None else None,
                       taxes=taxes_part(like.taxes, tax, net, currency), period_start=like.period_start, period_end=like.period_end)


def net_lines(lines: Sequence[InvoiceLine], discounts: Sequence[Discount], currency: str) -> tuple[InvoiceLine, ...]:
    """The lines with their discount netted in (a credit or refund carries no discount)."""
    shares = line_discounts(lines, discounts, currency)
    return tuple(dataclasses.replace(line, amount=line.amount - Money(share, currency),
                                     unit_amount=line.amount - Money(share, currency), quantity=Decimal(1),
                                     discount_amount=None) if share else line
                 for line, share in zip(lines, shares, strict=True))


def exclusive_lines(lines: Sequence[InvoiceLine]) -> tuple[InvoiceLine, ...]:
    """The lines with any tax-inclusive one as its net (amount less its tax) and the same tax:
    the same totals, said the way a document whose lines are all tax-exclusive says them."""
    return tuple(_line(line, line.amount.minor - line.tax_amount.minor, line.tax_amount.minor, line.amount.currency)
                 if line.tax_inclusive and line.tax_amount is not None else line for line in lines)


def all_inclusive(lines: Sequence[InvoiceLine]) -> bool:
    """Are the taxed lines (there are some) all tax-inclusive (a document can say so once)?"""
    taxed = [line.tax_inclusive for line in lines if line.tax_amount is not None]
    return bool(taxed) and all(taxed)


def split(lines: Sequence[InvoiceLine], amount: Money, *,
          inclusive: bool = False) -> tuple[tuple[InvoiceLine, ...], tuple[InvoiceLine, ...]]:
    """(the part of ``lines`` worth ``amount`` gross, the rest), both as tax-exclusive lines: the
    part's gross spread over the lines in proportion to theirs (largest remainder), each part's
    tax in its line's proportion, the net the rest of its share; the rest is each line minus its
    part, so part + rest is the lines exactly. ``inclusive``: the lines' amounts include their tax."""
    currency = amount.currency
    gross = [_gross(line, inclusive) for line in lines]
    pool = sum(gross)
    if not lines or pool <= 0:
        return tuple(lines), ()
    target = min(amount.minor, pool)  # never more credit than the lines hold
    shares = _spread(target, gross)
    # the part's tax is the lines' tax in the same proportion, rounded once for the document and
    # spread over the lines by largest remainder (rounding per line would drift by cents)
    taxes = [line.tax_amount.minor if line.tax_amount else 0 for line in lines]
    tax_total = sum(taxes)
    part_taxes = _spread(int((Decimal(tax_total) * target / pool).to_integral_value(ROUND_HALF_UP)), taxes)
    part, rest = [], []
    for line, share, part_tax_minor in zip(lines, shares, part_taxes, strict=True):
        tax = line.tax_amount.minor if line.tax_amount else None
        net = line.amount.minor - ((tax or 0) if inclusive or line.tax_inclusive else 0)
        part_tax = None if tax is None else part_tax_minor
        part_net = share - (part_tax or 0)
        if share:
            part.append(_line(line, part_net, part_tax, currency))
        rest_tax = None if tax is None else tax - (part_tax or 0)
        if net - part_net or rest_tax:
            rest.append(_line(line, net - part_net, rest_tax, currency))
    return tuple(part), tuple(rest)


def _spread(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` over ``weights`` in proportion, largest remainder first: sums to ``total``."""
    pool = sum(weights)
    if not pool:
        return [0] * len(weights)
    shares = [total * w // pool for w in weights]
    order = sorted(range(len(weights)), key=lambda n: (-(total * weights[n] % pool), n))
    for n in order[: total - sum(shares)]:
        shares[n] += 1
    return shares


def note_refunds(credit_note: CreditNote) -> tuple[NoteRefund, ...]:
    """Every refund the note pays out, in the source's order (one named by ``refund_id`` alone
    when the note has no list: a single refund, or a payload stored before the list existed)."""
    if credit_note.refunds:
        return credit_note.refunds
    if credit_note.refund_id is None:
        return ()
    return (NoteRefund(credit_note.refund_id, credit_note.refund_amount),)


def refund_posting(refund: Refund, credit_note: CreditNote | None, invoice: Invoice | None) -> Refund:
    """The refund with the lines a ledger books: its share of the claiming credit note's lines,
    else the invoice's split to the refund's amount, else one untaxed line (nothing says more).
    A note's refunds take their shares in the note's order, each from what the earlier ones
    left, so their parts and the note's credit (``credit_posting``) sum to the note exactly."""
    if credit_note is not None and credit_note.lines:
        lines: Sequence[InvoiceLine] = credit_note.lines
        for paid in note_refunds(credit_note):
            part, lines = split(lines, paid.amount if paid.amount is not None else refund.amount)
            if paid.refund_id == refund.id:
                return dataclasses.replace(refund, lines=part)
        part, _rest = split(credit_note.lines, refund.amount)  # a refund the note does not list
        return dataclasses.replace(refund, lines=part)
    if invoice is not None and invoice.lines and invoice.currency == refund.amount.currency:
        lines = net_lines(invoice.lines, invoice.discounts, invoice.currency)
        part, _rest = split(lines, refund.amount, inclusive=invoice.tax_inclusive)
        return dataclasses.replace(refund, lines=part)
    return refund


def credit_left(credit_note: CreditNote) -> Money:
    """What of the note is credit rather than paid out (what its ledger credit document holds):
    the total less its refunds, never below zero; zero when a refund of unknown amount took it."""
    if credit_note.refund_id is None:
        return credit_note.total
    refunded = credit_note.refund_amount
    if refunded is None or refunded.minor >= credit_note.total.minor:
        return Money.zero(credit_note.total.currency)
    return credit_note.total - refunded


def credit_posting(credit_note: CreditNote) -> CreditNote:
    """The credit note as its ledger document: the part its refunds did not pay out (their
    documents carry those parts, in order: ``refund_posting``), or the whole note when nothing
    was refunded."""
    left = credit_left(credit_note)
    if left == credit_note.total:
        return credit_note
    if not left.minor:
        return dataclasses.replace(credit_note, lines=(), total=left)
    lines: Sequence[InvoiceLine] = credit_note.lines
    for paid in note_refunds(credit_note):
        if paid.amount is not None:  # (an unknown amount leaves nothing: handled above)
            _part, lines = split(lines, paid.amount)
    return dataclasses.replace(credit_note, lines=tuple(lines), total=left)


def fully_refunded(credit_note: CreditNote) -> bool:
    """Is the whole note paid out by its refunds (their documents are then the one posting)?"""
    return credit_note.refund_id is not None and credit_left(credit_note).minor == 0


def _negated(line: InvoiceLine) -> InvoiceLine:
    return dataclasses.replace(line, amount=-line.amount, unit_amount=-line.unit_amount,
                               tax_amount=-line.tax_amount if line.tax_amount is not None else None,
                               taxes=negated(line.taxes), discount_amount=None)


def negative_invoice_credit(invoice: Invoice) -> CreditNote:
    """A negative invoice (a downgrade's proration) as the credit note a ledger can hold: the lines
    negated (discounts netted in), the total the invoice's, positive; credited to the customer."""
    lines = net_lines(invoice.lines, invoice.discounts, invoice.currency)
    return CreditNote(
        id=negative_credit_id(invoice.id), customer_id=invoice.customer_id or None, number=invoice.number,
        status="void" if invoice.status == "void" else "issued", currency=invoice.currency,
        lines=tuple(_negated(line) for line in lines), total=-invoice.total, issued_at=invoice.issued_at,
        reason="negative invoice")


def negative_credit_id(invoice_id: str) -> str:
    return stable_id("hub", "credit_note", invoice_id)


__all__ = ["all_inclusive", "credit_left", "credit_posting", "exclusive_lines", "fully_refunded",
           "negative_credit_id", "negative_invoice_credit", "net_lines", "note_refunds", "refund_posting", "split"]
