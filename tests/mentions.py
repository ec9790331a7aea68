"""Search everything a project home keeps for given strings (user ids, pseudonyms).

Parquet files are searched by their values and metadata, SQLite databases by a full dump of
their rows (and their raw pages), every other file by its bytes. A match is a whole token: not
preceded or followed by a letter, digit, ``_`` or ``-``, and not part of a decimal number.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq


def _texts(path: Path):
    raw = path.read_bytes()
    yield raw.decode("utf-8", errors="ignore")
    if raw.startswith(b"PAR1"):
        table = pq.read_table(path)
        yield str(table.schema.metadata)
        for col in table.columns:
            yield "\n".join(map(str, col.to_pylist()))
    elif raw.startswith(b"SQLite format 3"):
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            yield "\n".join(con.iterdump())
        finally:
            con.close()


#: a token: letters, digits, _ and -, not part of a longer one nor of a decimal number (the
#: 00166 in 0.00166 is not a token, the one in "00166" or <td>00166</td> is)
TOKEN = re.compile(r"(?<![\w.-])[\w-]+(?![\w-]|\.\d)")
WORD = re.compile(r"[\w-]+")


def find(roots: list[Path], needles) -> dict[str, list[str]]:
    """``{needle: [files holding it]}`` for the needles found under ``roots``."""
    simple = {n for n in needles if WORD.fullmatch(n)}
    patterns = {n: re.compile(rf"(?<![\w.-]){re.escape(n)}(?![\w-]|\.\d)") for n in set(needles) - simple}
    found: dict[str, list[str]] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            for text in _texts(path):
                hits = simple & set(TOKEN.findall(text))
                hits |= {n for n, pat in patterns.items() if pat.search(text)}
                for n in hits:
                    if str(path) not in found.setdefault(n, []):
                        found[n].append(str(path))
    return found


def modes(roots: list[Path]) -> dict[str, int]:
    """The permission bits of every file and folder under ``roots`` (links not followed)."""
    out = {}
    for root in roots:
        if root.exists():
            for path in [root, *root.rglob("*")]:
                if not path.is_symlink():
                    out[str(path)] = path.stat().st_mode & 0o777
    return out
