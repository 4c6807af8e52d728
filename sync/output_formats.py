"""How listing commands print: ``--format table|json|csv`` (with ``--json`` kept as its alias),
tables that fit the terminal (80 columns when it is not one), and CSV for spreadsheets.

A listing is columns with a kind and rows of plain values. The kind decides how a cell behaves:

* ``text`` (names, details, errors): wraps inside its column (long words fold), so a narrow
  terminal makes the row taller, never the words one per line;
* ``id``, ``number``, ``money``, ``when``: never wrapped and never cut — the column is at least as
  wide as its widest cell (a "10…" for 1,001 cannot happen); numbers and money align right.

Money is one cell of ``(minor, currency)``: the table shows it through ``format_money`` (the one
formatter), CSV as two columns — an exact decimal string and the currency code — never a float.
JSON is each command's own document (the contract scripts rely on), printed by ``print_json``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any, Literal, TypeVar

import click
from rich import box
from rich.console import Console
from rich.table import Table

from mapping.money import Money, format_money, normalize_currency

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json", "csv")
Kind = Literal["text", "id", "number", "money", "when"]
KEPT_WHOLE = ("id", "number", "money", "when")  # never wrapped, never cut


def format_option(fn: F) -> F:
    """``--format table|json|csv`` and ``--json`` (its alias, as scripts call it); the command
    receives ``fmt``. Saying both, differently, is a usage error."""

    @click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                  help="table (default, for people), json (for scripts) or csv (for spreadsheets).")
    @click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
    @wraps(fn)
    def wrapper(*args: Any, fmt: str | None, as_json: bool, **kwargs: Any) -> Any:
        if as_json and fmt not in (None, "json"):
            raise click.UsageError(f"--json and --format {fmt} ask for two formats: give one")
        return fn(*args, fmt=fmt or ("json" if as_json else "table"), **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = "text"
    short: int | None = None  # a table shows this many characters of an id (enough to name it); CSV all


@dataclass
class Listing:
    """What a listing command shows for people and spreadsheets (its JSON is its own document)."""

    title: str
    columns: Sequence[Column]
    rows: list[Sequence[Any]] = field(default_factory=list)
    empty: str = "nothing to list"

    def add(self, *cells: Any) -> None:
        self.rows.append(cells)


def cell_text(value: Any, kind: Kind) -> str:
    """One cell as people read it: money through ``format_money``, numbers grouped."""
    if value is None or value == "":
        return "—" if kind in KEPT_WHOLE else ""
    if kind == "money":
        minor, currency = value
        return format_money(int(minor), str(currency))
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if kind == "number" and isinstance(value, str):  # an exact decimal string (usage values)
        try:
            return f"{Decimal(value):,f}"
        except InvalidOperation:
            return value
    return str(value)


def table_of(listing: Listing, width: int = 80) -> Table:
    """The rich table, ``width`` wide at most: ids, numbers, money and times whole; each text
    column as wide as it needs if that fits, the long ones sharing the rest (they wrap inside)."""
    table = Table(title=listing.title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  title_justify="left")
    texts = [[cell_text(v, c.kind)[:c.short] if c.short else cell_text(v, c.kind)
              for v, c in zip(row, listing.columns, strict=True)] for row in listing.rows]
    natural = [max([len(column.name), *(len(line) for row in texts for line in row[i].splitlines() or [""])])
               for i, column in enumerate(listing.columns)]
    whole = [i for i, c in enumerate(listing.columns) if c.kind in KEPT_WHOLE]
    wrapping = [i for i in range(len(listing.columns)) if i not in whole]
    room = width - SEPARATOR * (len(listing.columns) - 1) - sum(natural[i] for i in whole)
    widths = shared_widths(room, {i: natural[i] for i in wrapping})
    for i, column in enumerate(listing.columns):
        if i in widths:
            table.add_column(column.name, width=widths[i], overflow="fold")
        else:
            table.add_column(column.name, no_wrap=True, min_width=natural[i], overflow="ignore",
                             justify="right" if column.kind in ("number", "money") else "left")
    for row in texts:
        table.add_row(*row)
    return table


SEPARATOR = 3  # between two columns: a space of padding each side and the (blank) divider
NARROWEST = 6  # a text column is never squeezed below this (nor below its own widest cell)


def shared_widths(room: int, natural: dict[int, int]) -> dict[int, int]:
    """Share ``room`` among text columns fairly: the narrow ones take what they need, the wide
    ones split what is left evenly (max-min fairness), none below ``NARROWEST``."""
    widths: dict[int, int] = {}
    left = sorted(natural, key=lambda i: natural[i])
    while left:
        fair = max(NARROWEST, room // len(left))
        i = left.pop(0)
        widths[i] = min(natural[i], fair) if natural[i] <= fair or left else max(NARROWEST, min(natural[i], room))
        room -= widths[i]
    return widths


def print_table(listing: Listing, console: Console) -> None:
    if not listing.rows:
        console.print(f"{listing.title}: {listing.empty}")
        return
    console.print(table_of(listing, console.width))


def csv_text(listing: Listing) -> str:
    """CSV with a header row; a money column is two: ``name`` (exact decimal) and ``name_currency``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header: list[str] = []
    for column in listing.columns:
        header.extend([column.name, f"{column.name}_currency"] if column.kind == "money" else [column.name])
    writer.writerow(header)
    for row in listing.rows:
        writer.writerow(list(_csv_cells(row, listing.columns)))
    return out.getvalue()


def _csv_cells(row: Sequence[Any], columns: Sequence[Column]) -> Iterable[str]:
    for value, column in zip(row, columns, strict=True):
        if column.kind == "money":
            if value is None:
                yield from ("", "")
                continue
            minor, currency = value
            code = normalize_currency(str(currency))
            yield from (Money(int(minor), code).to_decimal_str(), code)
        else:
            yield "" if value is None else str(value)


def emit(fmt: str, document: Any, listings: Callable[[], Sequence[Listing]], console: Console,
         print_json: Callable[[Any], None]) -> None:
    """Print in the chosen format: ``document`` as JSON, else the listings as tables or CSV (one
    CSV per listing, a blank line between when there are several)."""
    if fmt == "json":
        print_json(document)
        return
    chosen = listings()
    if fmt == "csv":
        click.echo("\n".join(csv_text(listing) for listing in chosen), nl=False)
        return
    for listing in chosen:
        print_table(listing, console)


__all__ = ["FORMATS", "Column", "Listing", "cell_text", "csv_text", "emit", "format_option", "print_table",
           "table_of"]
