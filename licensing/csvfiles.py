"""Reading CSV files as councils and police publish them, and writing safe CSV back.

Reading: UTF-8 (with or without BOM) or cp1252, CRLF or LF. Writing: every text cell
that a spreadsheet would run as a formula is neutralised; plain numbers are left alone.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def decode_text(data: bytes) -> str:
    """Decode a file as UTF-8 (dropping a BOM), else cp1252, else Latin-1 (never fails)."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


@dataclass(frozen=True)
class CsvRow:
    """One record with the physical line it starts on (1 is the header)."""

    line_number: int
    values: list[str]


def read_rows(text: str) -> tuple[list[str], Iterator[CsvRow]]:
    """The header and an iterator of rows, each with its starting line number."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], iter(())

    def rows() -> Iterator[CsvRow]:
        previous_end = reader.line_num
        for values in reader:
            yield CsvRow(previous_end + 1, values)
            previous_end = reader.line_num

    return header, rows()


def safe_cell(value: object) -> object:
    """Neutralise a text cell a spreadsheet would treat as a formula; numbers pass."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV text (CRLF, as spreadsheets expect) with every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def join_row(values: Sequence[str]) -> str:
    """A row's fields as one CSV line, to keep a rejected row exactly as it was read."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()
