"""Reading published CSV files (encodings, line numbers) and writing formula-safe CSV."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licensing.csvfiles import decode_text, join_row, read_rows, safe_cell, write_csv

# Hypothesis's per-example deadline is a timing assertion: off, so a busy machine cannot fail it.
NO_DEADLINE = settings(deadline=None)

# ---- decode_text ---------------------------------------------------------------------


def test_decode_utf8() -> None:
    assert decode_text("Café’s,Ł\n".encode()) == "Café’s,Ł\n"


def test_decode_utf8_with_bom_drops_the_bom() -> None:
    text = decode_text(b"\xef\xbb\xbfCASEREFERENCE,PREMISESNAME\r\n")
    assert text == "CASEREFERENCE,PREMISESNAME\r\n"
    assert not text.startswith("\ufeff")


def test_decode_cp1252_curly_quote_and_accent() -> None:
    # 0x92 is the right single quote and 0xE9 is e-acute in cp1252; neither is valid UTF-8.
    assert decode_text(b"Hickson & Black\x92s Caf\xe9") == "Hickson & Black’s Café"


def test_decode_cp1252_pound_and_euro() -> None:
    assert decode_text(b"\xa35 \x80") == "£5 €"


def test_decode_cp1252_with_a_bom_does_not_glue_it_to_the_first_column() -> None:
    assert decode_text(b"\xef\xbb\xbfA,B\r\nCaf\xe9,\x92\r\n") == "A,B\r\nCafé,’\r\n"


def test_decode_cp1252_undefined_bytes_do_not_spoil_the_rest() -> None:
    # 0x81 is undefined in cp1252: it becomes U+0081 while 0x92 still reads as a quote.
    assert decode_text(b"\x81 Black\x92s") == "\x81 Black’s"


@NO_DEADLINE
@given(st.binary(max_size=200))
def test_decode_never_fails_and_never_leaves_surrogates(data: bytes) -> None:
    text = decode_text(data)
    assert isinstance(text, str)
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


@NO_DEADLINE
@given(st.text(max_size=100))
def test_decode_round_trips_any_utf8_text(text: str) -> None:
    assert decode_text(text.encode("utf-8")) == text.removeprefix("\ufeff")


@NO_DEADLINE
@given(st.text(alphabet=st.characters(codec="cp1252"), max_size=100))
def test_decode_reads_cp1252_text_that_is_not_utf8(text: str) -> None:
    data = text.encode("cp1252")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert decode_text(data) == text
    else:  # ASCII and a few lucky byte runs are valid UTF-8 too: read as that
        assert decode_text(data) == data.decode("utf-8-sig")


# ---- read_rows ----------------------------------------------------------------------


def _lines(text: str) -> list[tuple[int, list[str]]]:
    _header, rows = read_rows(text)
    return [(row.line_number, row.values) for row in rows]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_read_rows_numbers_each_record_from_line_two(newline: str) -> None:
    text = newline.join(["A,B", "1,2", "3,4", ""])
    header, rows = read_rows(text)
    assert header == ["A", "B"]
    assert [(r.line_number, r.values) for r in rows] == [(2, ["1", "2"]), (3, ["3", "4"])]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_read_rows_a_quoted_newline_moves_later_line_numbers(newline: str) -> None:
    text = newline.join(["A,B", '1,"two', 'lines"', "3,4", '"x,y",5', ""])
    assert _lines(text) == [
        (2, ["1", f"two{newline}lines"]),
        (4, ["3", "4"]),
        (5, ["x,y", "5"]),
    ]


def test_read_rows_counts_blank_lines_and_short_rows() -> None:
    text = "A,B,C\r\n1,2,3\r\n\r\n,,\r\n, \r\n4,5,6\r\n"
    assert _lines(text) == [
        (2, ["1", "2", "3"]),
        (3, []),
        (4, ["", "", ""]),
        (5, ["", " "]),
        (6, ["4", "5", "6"]),
    ]


def test_read_rows_last_line_without_newline() -> None:
    assert _lines("A\n1\n2") == [(2, ["1"]), (3, ["2"])]


def test_read_rows_of_empty_text_has_no_header_and_no_rows() -> None:
    header, rows = read_rows("")
    assert header == []
    assert list(rows) == []


@NO_DEADLINE
@given(
    st.lists(
        st.lists(st.text(alphabet="ab ,\"\n'=", max_size=6), min_size=1, max_size=4),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(["\n", "\r\n"]),
)
def test_read_rows_line_numbers_match_where_each_record_starts(
    records: list[list[str]], newline: str
) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows([["H"], *records])
    text = out.getvalue()
    rows = list(read_rows(text)[1])
    assert [r.values for r in rows] == records
    # A record starts on line 1 + the number of line breaks before it.
    expected, line = [], 2
    for record in records:
        expected.append(line)
        line += join_row(record).count("\n") + 1
    assert [r.line_number for r in rows] == expected


# ---- safe_cell and write_csv --------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        '=HYPERLINK("http://evil.example","click")',
        "+44 161 234 5000",
        "-1+cmd|' /C calc'!A0",
        "@SUM(A1)",
        "\tfoo",
        "\r=1",
        "-",
        "+",
        "-2.24\n",
        "-١٢",  # Arabic-Indic digits are not a plain number to a spreadsheet
    ],
)
def test_safe_cell_neutralises_formula_starts(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["-2.24", "+1", "-0.5e-3", "-.5", "53.4746719", "-3", "1e5"])
def test_safe_cell_leaves_plain_numbers_alone(value: str) -> None:
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", ["The Crown", "M1 5JG", "", "'quoted", " =1"])
def test_safe_cell_leaves_ordinary_text_alone(value: str) -> None:
    assert safe_cell(value) == value


def test_safe_cell_numbers_and_none() -> None:
    assert safe_cell(-2.24) == -2.24
    assert safe_cell(-7) == -7
    assert safe_cell(None) == ""


@NO_DEADLINE
@given(st.text(max_size=30))
def test_safe_cell_never_returns_a_formula(text: str) -> None:
    out = safe_cell(text)
    assert isinstance(out, str)
    if out.startswith(("=", "+", "-", "@", "\t", "\r")):
        float(out)  # only a plain number may keep such a start
        assert out == text
    else:
        assert out in (text, "'" + text)


@NO_DEADLINE
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_safe_cell_keeps_any_number_written_as_text(number: float) -> None:
    assert safe_cell(repr(number)) == repr(number)


def test_write_csv_neutralises_header_and_cells_and_uses_crlf() -> None:
    text = write_csv(["=h", "b"], [["=1+1", "-2.24"], [None, 5]])
    assert text == "'=h,b\r\n'=1+1,-2.24\r\n,5\r\n"
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["'=h", "b"],
        ["'=1+1", "-2.24"],
        ["", "5"],
    ]


def test_join_row_keeps_a_row_as_one_csv_line() -> None:
    values = ["1", "a, b", 'say "hi"', "two\nlines"]
    joined = join_row(values)
    assert joined == '1,"a, b","say ""hi""","two\nlines"'
    assert next(csv.reader(io.StringIO(joined, newline=""))) == values
