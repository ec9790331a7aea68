"""Reading a user's file into a :class:`RawTable`: every cell as written, nothing interpreted.

The readers refuse, with one :class:`~urm_models.data.validation.DataValidationError` that names the
file (and the line or column), whatever they could only read by guessing:

* a path that is a symbolic link, or not a regular file (a directory, a FIFO, a device);
* an empty, whitespace-only or header-only file;
* bytes that are neither text, Parquet nor one of the supported compressions (``.gz``,
  ``.bz2``, ``.xz``, ``.zst``, single-member ``.zip`` around a CSV/TSV), and a compressed or
  Parquet file that is corrupt;
* a header that splits on more than one of ``,`` ``;`` tab ``|`` (pass ``sep=``);
* duplicated column names (after trimming surrounding whitespace);
* rows with more or fewer fields than the header (ragged rows), a stray quote;
* lines that are not valid text in ``encoding``, and lines holding a NUL byte (binary data
  inside text: never a value);
* Parquet columns of a nested type (struct, list, map) used as a column of the contract (the
  validator refuses them; other nested columns are kept as JSON text).

Excel's ``sep=;`` first line (which tells Excel the delimiter) is read as the delimiter it names
and skipped. Parquet columns keep their type, except that binary columns holding UTF-8 text
become text, and times keep their own unit (a year-2999 timestamp is a value the validator
rejects, not a file that cannot be read).

With ``errors="quarantine"`` ragged rows and undecodable lines are set aside (the validator
writes them to ``data/quarantine/`` with their line numbers) instead of failing the file.
Cells are kept as strings; an empty cell is missing. Nothing is stripped here except the header
names' surrounding whitespace and a UTF-8 byte-order mark.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..core import paths
from ..core.errors import DataValidationError
from .contract import Errors
from .options import ReadOptions

MAX_EXAMPLES = 5
CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".dat"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
COMPRESSIONS = {
    ".gz": b"\x1f\x8b",
    ".bz2": b"BZh",
    ".xz": b"\xfd7zXZ\x00",
    ".zst": b"\x28\xb5\x2f\xfd",
    ".zip": b"PK\x03\x04",
}
#: delimiters told apart from the header line when ``sep`` is not given
DELIMITERS = (",", ";", "\t", "|")
WHITESPACE = r"\s+"


@dataclass
class RawTable:
    """A file read with every cell as written (strings for CSV), before any parsing.

    ``lines`` holds the line of the file where each row starts (CSV), so that reports point at
    the right place even after blank lines or quoted line breaks. ``rejected_lines`` are lines
    set aside by the reader in quarantine mode: ``(line, text, reason)``.
    """

    source: str
    frame: pd.DataFrame
    fmt: Literal["csv", "parquet", "frame"]
    rejected_lines: list[tuple[int, str, str]] = field(default_factory=list)
    lines: np.ndarray | None = None
    sep: str | None = None
    #: Parquet columns of a nested type (name -> type), held as JSON text in ``frame``
    nested: dict[str, str] = field(default_factory=dict)

    def location(self, index) -> str:
        if self.fmt == "csv":
            if self.lines is not None:
                return f"line {int(self.lines[self.frame.index.get_loc(index)])}"
            return f"line {int(index) + 2}"
        return f"row {index}"


def raw_from_frame(df: pd.DataFrame, name: str = "<DataFrame>") -> RawTable:
    cols = [str(c) for c in df.columns]
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise DataValidationError(
            f"{name}: duplicated column name(s) {dup}: which one is meant cannot be told; rename them", source=name
        )
    return RawTable(name, df.reset_index(drop=True), "frame")


def _fail(path, message: str, **kw) -> DataValidationError:
    return DataValidationError(f"{path}: {message}", source=str(path), **kw)


def check_regular_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it names a regular file itself (not through a symbolic link)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if stat.S_ISLNK(st.st_mode):
        raise _fail(
            path,
            f"is a symbolic link (to {os.readlink(path)}); give the path of the file "
            "itself: links are not followed, so that a link cannot pull another file in",
        )
    if stat.S_ISDIR(st.st_mode):
        raise _fail(path, "is a directory, not a CSV or Parquet file")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, "is not a regular file (a FIFO, socket or device); give a CSV or Parquet file")
    if st.st_size == 0:
        raise _fail(path, "the file is empty (0 bytes), no rows to load")
    return path


def _suffixes(path: Path) -> tuple[str, str | None]:
    """(format suffix, compression suffix or None), lower-case."""
    sfx = [s.lower() for s in path.suffixes]
    if sfx and sfx[-1] in COMPRESSIONS:
        return (sfx[-2] if len(sfx) > 1 else ""), sfx[-1]
    return (sfx[-1] if sfx else ""), None


def _decompress(path: Path, comp: str) -> bytes:
    import bz2
    import gzip
    import lzma
    import zipfile
    import zlib

    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head.startswith(COMPRESSIONS[comp]):
        raise _fail(path, f"named {comp} but its bytes are not {comp[1:]}-compressed; rename it or export it again")
    try:
        if comp == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        if comp == ".bz2":
            with bz2.open(path, "rb") as fh:
                return fh.read()
        if comp == ".xz":
            with lzma.open(path, "rb") as fh:
                return fh.read()
        if comp == ".zst":
            import zstandard

            with open(path, "rb") as fh:
                return zstandard.ZstdDecompressor().stream_reader(fh).read()
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise _fail(
                    path,
                    f"a zip archive must hold exactly one file, it holds {len(members)}: "
                    f"{[m.filename for m in members][:5]}",
                )
            return zf.read(members[0])
    except DataValidationError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise _fail(path, f"cannot decompress ({comp[1:]}): {exc}; the file is corrupt or truncated") from exc
    except Exception as exc:  # zstandard.ZstdError and relatives
        if type(exc).__module__.startswith("zstandard"):
            raise _fail(path, f"cannot decompress (zst): {exc}; the file is corrupt or truncated") from exc
        raise


#: byte-order marks of text that is not UTF-8 (Excel's "Unicode text" export is UTF-16 LE)
WIDE_BOMS = {b"\xff\xfe\x00\x00": "utf-32", b"\x00\x00\xfe\xff": "utf-32", b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}


def _wide(encoding: str) -> bool:
    """UTF-16 or UTF-32: text whose bytes hold NULs, decoded as a whole, never line by line."""
    import codecs

    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name.startswith(("utf-16", "utf-32"))


def _format_of(path: Path, encoding: str = "utf-8") -> tuple[Literal["csv", "parquet"], str | None]:
    fmt_sfx, comp = _suffixes(path)
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if comp is not None:
        if fmt_sfx in PARQUET_SUFFIXES:
            raise _fail(
                path,
                "a compressed Parquet file: Parquet compresses its own columns; give "
                f"{path.name.removesuffix(comp)} itself",
            )
        if fmt_sfx not in CSV_SUFFIXES:
            raise _fail(
                path,
                f"unsupported file type {fmt_sfx or '(no extension)'!r} inside {comp}; "
                f"give a CSV ({', '.join(sorted(CSV_SUFFIXES))}) compressed as "
                f"{', '.join(sorted(COMPRESSIONS))}",
            )
        return "csv", comp
    if head.startswith(b"PAR1"):
        if fmt_sfx in CSV_SUFFIXES:
            raise _fail(
                path, f"the file is named like a CSV but its bytes are Parquet; rename it to {path.stem}.parquet"
            )
        return "parquet", None
    if fmt_sfx in PARQUET_SUFFIXES:
        raise _fail(path, "not a Parquet file (it does not start with the Parquet magic bytes 'PAR1')")
    for sfx, magic in COMPRESSIONS.items():
        if head.startswith(magic):
            raise _fail(
                path,
                f"not a CSV or Parquet file: its bytes are {sfx[1:]}-compressed (zip/xlsx "
                f"or an archive). Name it {path.name}{sfx} if it is a compressed CSV, or "
                "export it as CSV (UTF-8) or Parquet.",
            )
    bom = next((enc for mark, enc in WIDE_BOMS.items() if head.startswith(mark)), None)
    if bom is not None and not _wide(encoding):
        raise _fail(
            path,
            f"the file is {bom.upper()} text (a byte-order mark; Excel's 'Unicode text' export is "
            f"UTF-16): pass encoding='{bom}' (--encoding {bom})",
        )
    if (b"\x00" in head and not _wide(encoding)) or head.startswith((b"\x89PNG", b"%PDF")):
        raise _fail(
            path,
            "not a CSV or Parquet file (binary content: an image, PDF or other binary "
            "bytes). Export it as CSV (UTF-8) or Parquet; UTF-16 text needs encoding='utf-16'.",
        )
    if fmt_sfx not in CSV_SUFFIXES:
        raise _fail(
            path,
            f"unsupported file type {fmt_sfx or '(no extension)'!r}; give a CSV "
            f"({', '.join(sorted(CSV_SUFFIXES))}, optionally compressed as "
            f"{', '.join(sorted(COMPRESSIONS))}) or Parquet "
            f"({', '.join(sorted(PARQUET_SUFFIXES))}) file",
        )
    return "csv", None


def read_raw(
    path: str | Path,
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
    errors: Errors = "raise",
    header: bool = True,
    names: list[str] | None = None,
) -> RawTable:
    """Read a CSV (plain or compressed) or Parquet file without interpreting any value.

    ``sep``: the delimiter; by default ``\\t`` for ``.tsv`` files and otherwise the one of
    ``, ; \\t |`` that splits the header line (a header that splits on several is refused).
    ``sep=r"\\s+"`` splits on runs of whitespace (no quoting). ``names`` replaces the header's
    column names (e.g. to tell duplicated ones apart); ``header=False`` with ``names`` reads a
    file without a header line.
    """
    path = check_regular_file(path)
    fmt, comp = _format_of(path, encoding)
    if fmt == "parquet":
        return _read_parquet(path)
    data = _decompress(path, comp) if comp else path.read_bytes()
    if not data.strip():
        raise _fail(
            path,
            "the file holds no data (only whitespace)"
            if data
            else "the file is empty once decompressed, no rows to load",
        )
    text, rejected = _decode(path, data, encoding, errors)
    text, rejected = _nul_lines(path, text, rejected, errors)
    text, said = _excel_sep_line(path, text, sep) if header else (text, None)
    sep = said or sep
    if sep is None:
        inner = _suffixes(path)[0]
        sep = "\t" if inner == ".tsv" else _sniff_delimiter(path, text) if header else ","
    records = _whitespace_records(text) if sep == WHITESPACE else _csv_records(path, text, sep)
    if header:
        first = next(records, None)
        if first is None:
            raise _fail(path, "the file holds no data")
        head_line, head = first
        columns = list(names) if names is not None else [c.strip().lstrip("\ufeff").strip() for c in head]
        if names is not None and len(names) != len(head):
            raise _fail(path, f"names= gives {len(names)} column names, the header line has {len(head)} fields: {head}")
    else:
        if names is None:
            raise ValueError("header=False needs names")
        columns, head_line = list(names), None
    width = len(columns)
    # rows go straight into columns (no list per row): memory grows with the cells only
    cols: list[list] = [[] for _ in range(width)]
    line_numbers: list[int] = []
    bad_lines = []
    joiner = " " if sep == WHITESPACE else sep
    for number, row in records:
        if len(row) != width:
            bad_lines.append((number, joiner.join(row), f"{len(row)} fields where the header has {width}"))
            continue
        line_numbers.append(number)
        for col, v in zip(cols, row, strict=True):
            col.append(v or None)  # empty cell = missing; whitespace-only cells stay as written
    _check_header(path, columns, len(line_numbers) + len(bad_lines))
    if bad_lines and errors == "raise":
        examples = "; ".join(f"line {n}: {t!r} ({why})" for n, t, why in bad_lines[:MAX_EXAMPLES])
        raise _fail(
            path,
            f"{len(bad_lines):,} row(s) do not have the header's {width} fields "
            f"(header{' on line ' + str(head_line) if head_line else ''}: "
            f"{columns}), e.g. {examples}. A delimiter inside an unquoted value (such "
            f"as 1,234.50 in a comma-separated file) does this: quote such values, "
            f"pass the right sep=, or errors='quarantine' to set these rows aside.",
            failures=pd.DataFrame([{"column": "(line)", "check": "field_count", "n_rows": len(bad_lines)}]),
        )
    if not line_numbers:
        if bad_lines:
            raise _fail(path, f"none of the {len(bad_lines):,} data row(s) has the header's {width} fields")
        raise _fail(path, "the file has a header but no rows")
    frame = pd.DataFrame({i: pd.Series(c, dtype=object) for i, c in enumerate(cols)})
    del cols
    frame.columns = columns
    reasons = [(n, t, why) for n, t, why in rejected] + [(n, t, f"ragged row: {why}") for n, t, why in bad_lines]
    return RawTable(str(path), frame, "csv", sorted(reasons), np.asarray(line_numbers, dtype=np.int64), sep)


def read_file(path: str | Path, options: ReadOptions) -> tuple[RawTable, ReadOptions]:
    """``path`` read as ``options`` say (``sep``, ``encoding``, ``names``, ``errors``), and the
    options with their data set defaulting to the file's (what every loader of a user's file
    does before it validates)."""
    raw = read_raw(path, sep=options.sep, encoding=options.encoding, errors=options.errors, names=options.names)
    return raw, replace(options, dataset=options.dataset or paths.dataset_name(path))


def _check_header(path: Path, columns: list[str], n_rows: int, parquet: bool = False) -> None:
    seen: dict[str, list[int]] = {}
    for i, c in enumerate(columns, start=1):
        seen.setdefault(c, []).append(i)
    dup = {c: pos for c, pos in seen.items() if len(pos) > 1}
    if not dup:
        return
    what = "; ".join(f"{c!r} in columns {', '.join(map(str, pos))}" for c, pos in dup.items())
    count: dict[str, int] = {}
    distinct = []
    for c in columns:
        count[c] = count.get(c, 0) + 1
        distinct.append(c if count[c] == 1 else f"{c}_{count[c]}")
    fix = (
        "rename the copies where the file is written"
        if parquet
        else f"pass names={distinct!r} to name the columns yourself (the header line is then skipped) "
        "and map the one you mean with columns="
    )
    raise _fail(
        path,
        f"duplicated column name(s): {what}, over {n_rows:,} rows. Which one is meant cannot be told: {fix}.",
        failures=pd.DataFrame(
            [{"column": c, "check": "unique_column_name", "n_rows": n_rows, "option": "names="} for c in dup]
        ),
    )


def _decode(path: Path, data: bytes, encoding: str, errors: Errors) -> tuple[str, list]:
    """The text of the file; undecodable lines become empty lines (kept in ``rejected`` with
    their number) so that every later line keeps its number."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        pass
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    else:
        return text.removeprefix("\ufeff"), []
    if _wide(encoding):  # no lines to set aside: the bytes of a line are not known before decoding
        raise _fail(path, f"the file is not valid {encoding} text; pass its real encoding (encoding=...)")
    good, rejected = [], []
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        try:
            good.append(line.decode(encoding))
        except UnicodeDecodeError as exc:
            rejected.append((number, f"{line.rstrip()!r}", f"not {encoding} text ({exc.reason} at byte {exc.start})"))
            good.append("\n")
    if errors == "raise" or 1 in {n for n, _, _ in rejected}:
        examples = "; ".join(f"line {n}: {t} ({why})" for n, t, why in rejected[:MAX_EXAMPLES])
        raise _fail(
            path,
            f"{len(rejected)} line(s) are not valid {encoding} text, e.g. {examples}. "
            f"Pass encoding='latin-1' (or the file's real encoding), or errors='quarantine' "
            f"to set these lines aside.",
            failures=pd.DataFrame([{"column": "(line)", "check": f"{encoding}_text", "n_rows": len(rejected)}]),
        )
    return "".join(good).removeprefix("\ufeff"), rejected


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _split_lines(text: str) -> list[str]:
    """The physical lines of ``text`` with their line breaks, split as the csv module counts
    lines (``\r\n``, ``\r``, ``\n``; not ``str.splitlines``' form feeds and separators)."""
    out, start = [], 0
    for m in _LINE_BREAK.finditer(text):
        out.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out


def _nul_lines(path: Path, text: str, rejected: list, errors: Errors) -> tuple[str, list]:
    """Lines holding a NUL byte (binary data inside text: no value of any column has one) are
    set aside like undecodable lines (kept as empty lines, so that later lines keep their
    numbers), or the file is refused with their line numbers."""
    if "\x00" not in text:
        return text, rejected
    lines = _split_lines(text)
    bad = [
        (n, f"{line.rstrip()!r}", "a NUL byte (binary data inside text)")
        for n, line in enumerate(lines, 1)
        if "\x00" in line
    ]
    if errors == "raise" or bad[0][0] == 1:
        examples = "; ".join(f"line {n}: {t}" for n, t, _ in bad[:MAX_EXAMPLES])
        raise _fail(
            path,
            f"{len(bad):,} line(s) hold a NUL byte (binary data inside the text, which no value may hold), e.g. "
            f"{examples}. Export the file again, or pass errors='quarantine' to set these lines aside.",
            failures=pd.DataFrame([{"column": "(line)", "check": "no_nul_byte", "n_rows": len(bad)}]),
        )
    numbers = {n for n, _, _ in bad}
    kept = "".join("\n" if n in numbers else line for n, line in enumerate(lines, 1))
    return kept, sorted([*rejected, *bad])


_SEP_LINE = re.compile(r"\ufeff?\s*sep=(.)?\s*$", re.IGNORECASE)


def _excel_sep_line(path: Path, text: str, sep: str | None) -> tuple[str, str | None]:
    """Excel's ``sep=;`` first line names the delimiter (Excel reads it and so do we): the
    line is replaced by an empty one and its delimiter returned. A ``sep=`` argument that
    contradicts it is refused."""
    first = re.match(r"[^\r\n]*", text).group(0)
    m = _SEP_LINE.fullmatch(first)
    if not m:
        return text, None
    said = m.group(1)
    if said is None or said in '"' or said.isalnum():
        raise _fail(path, f"the first line {first!r} should name the delimiter (Excel's sep=; line), but names none")
    if sep is not None and sep != said:
        raise _fail(
            path,
            f"the first line {first!r} says the delimiter is {said!r} (Excel's sep= line), but sep={sep!r} "
            "was given: leave sep= out or give the file's delimiter",
        )
    return text[len(first) :], said  # the line's break stays: later lines keep their numbers


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _sniff_delimiter(path: Path, text: str) -> str:
    head = _first_line(text)
    splits = {}
    for d in DELIMITERS:
        try:
            fields = next(csv.reader([head], delimiter=d, strict=True), [])
        except csv.Error:
            continue
        if len(fields) > 1:
            splits[d] = len(fields)
    if len(splits) > 1:
        named = ", ".join(f"{d!r} into {n} columns" for d, n in splits.items())
        raise _fail(
            path,
            f"the header line splits on more than one delimiter ({named}): pass sep= (e.g. sep={next(iter(splits))!r})",
        )
    return next(iter(splits), ",")


def _csv_records(path: Path, text: str, sep: str):
    """(line where the record starts, fields) of every non-blank record."""
    if len(sep) != 1:
        raise ValueError(f"sep must be one character or {WHITESPACE!r}, not {sep!r}")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', doublequote=True, strict=True)
    last = 0
    try:
        for row in reader:
            start, last = last + 1, reader.line_num
            if row and (len(row) > 1 or row[0].strip()):  # a blank line is no record
                yield start, row
    except csv.Error as exc:
        raise _fail(
            path,
            f"cannot parse as CSV at line {reader.line_num}: {exc}. A stray or unclosed "
            "quote, or a NUL byte, does this.",
        ) from None


def _whitespace_records(text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            yield number, fields


def _read_parquet(path: Path) -> RawTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        _check_header(path, [str(n) for n in pf.schema_arrow.names], pf.metadata.num_rows, parquet=True)
        table = pf.read()
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, DataValidationError):
            raise
        raise _fail(path, f"cannot read as Parquet: {exc}; the file is corrupt or truncated") from exc
    table, nested, mixed = _plain_columns(table)
    try:
        # times keep their unit: a year-2999 timestamp stays a value (rejected by the validator
        # with its row), not an overflow of pandas' nanoseconds that blocks the whole file
        frame = table.to_pandas(coerce_temporal_nanoseconds=False, date_as_object=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise _fail(path, f"cannot convert the Parquet columns: {exc}") from exc
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    for name in mixed:  # binary columns with some values that are not UTF-8
        frame[name] = frame[name].map(_utf8_or_bytes, na_action="ignore").astype(object)
    if frame.empty:
        raise _fail(path, "the file has a header but no rows")
    return RawTable(str(path), frame, "parquet", nested=nested)


def _plain_columns(table):
    """The table with every column of a type pandas holds as plain values: dictionary-encoded
    columns decoded, binary columns as text where their bytes are UTF-8 (the names of those
    where some are not: the reader decodes them value by value, leaving bytes for the validator
    to reject), nested columns (struct, list, map, union) as JSON text with their types."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nested: dict[str, str] = {}
    mixed: list[str] = []
    columns = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
            t = col.type
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
            col = col.cast(pa.large_binary())
            try:
                col = pc.cast(col, pa.large_string())
            except pa.ArrowInvalid:
                mixed.append(str(name))
        elif pa.types.is_nested(t) or pa.types.is_union(t):
            nested[str(name)] = str(t)
            text = [
                None if v is None else json.dumps(v, sort_keys=True, default=str, ensure_ascii=False)
                for v in col.to_pylist()
            ]
            col = pa.array(text, type=pa.large_string())
        columns.append(col)
    return pa.table(columns, names=table.column_names), nested, mixed


def _utf8_or_bytes(v):
    if v is None:
        return None
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return v
