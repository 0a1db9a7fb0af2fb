"""Reading CSV files as councils and police publish them, and writing safe CSV back.

Reading: UTF-8 (with or without BOM) or cp1252, CRLF, LF or CR. Writing: every text cell
that a spreadsheet would run as a formula is neutralised; plain numbers are left alone.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from flask import Response

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ASCII digits only, matched against the whole cell: "$" would also match before a
# trailing newline, and \d would let other scripts' digits through.
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_UTF8_BOM = b"\xef\xbb\xbf"
# surrogateescape turns an undecodable byte b into U+DC00+b; map those back to U+00b.
_CP1252_UNDEFINED = {0xDC00 + b: b for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}


def decode_text(data: bytes) -> str:
    """Decode a file as UTF-8, else as cp1252 the way browsers read it (never fails).

    A BOM is dropped. cp1252 leaves five bytes (0x81, 0x8D, 0x8F, 0x90, 0x9D) undefined;
    like the WHATWG "windows-1252" decoder they become the control characters of the same
    number, so one stray byte does not turn the rest of the file's curly quotes and
    accented letters into Latin-1 control characters.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # A BOM on a file that is not valid UTF-8 after all (an editor saved mixed bytes)
    # must not end up glued to the first column name.
    text = data.removeprefix(_UTF8_BOM).decode("cp1252", errors="surrogateescape")
    return text.translate(_CP1252_UNDEFINED)


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


def unreadable_csv(error: csv.Error, after_line: int | None = None) -> str:
    """Why a file cannot be read as CSV, for the person who uploaded it. A field longer
    than the csv module's limit (a hostile or broken file: a 50 MB line, say) is refused
    by the reader before it is held in memory as a field, and said so plainly."""
    where = f" after line {after_line}" if after_line is not None else ""
    if "field larger than field limit" in str(error):
        return (
            f"The file cannot be read as CSV{where}: a field is longer than "
            f"{csv.field_size_limit():,} characters"
        )
    return f"The file cannot be read as CSV{where}: {error}"


def safe_cell(value: object) -> object:
    """Neutralise a text cell a spreadsheet would treat as a formula; numbers pass."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
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


class RejectedRow(Protocol):
    """What an import keeps of a row it could not take."""

    line_number: int
    reason: str
    raw: str


def rejections_csv(rejections: Iterable[RejectedRow]) -> str:
    """Rejected rows as CSV: line number, reason, and the row as it was read."""
    return write_csv(
        ["line_number", "reason", "row"], ([r.line_number, r.reason, r.raw] for r in rejections)
    )


def csv_download(text: str, file_name: str) -> Response:
    """A CSV file for the browser to save, never to display."""
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )


def join_row(values: Sequence[str]) -> str:
    """A row's fields as one CSV line, to keep a rejected row exactly as it was read."""
    # The writer quotes a field holding a character of its line terminator, so an empty
    # terminator would leave an embedded newline unquoted (and the row unreadable).
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    # PostgreSQL text cannot hold NUL: keep it visible instead of failing the import.
    return out.getvalue().removesuffix("\r\n").replace("\x00", "\\x00")
