"""Season calendars: which days belong to a high season, as a table of periods.

A season calendar is given in one of three forms (the refresh's parameter ``season_calendar``, a
data set's config, or in Python):

- recurring ranges of the year, ``"MM-DD..MM-DD"`` (``"11-01..12-31"``; a range may wrap the
  year's end, ``"12-15..01-15"``), the same every year, so known for any future horizon;
- dated ranges, ``"YYYY-MM-DD..YYYY-MM-DD"`` (a sale, an event), inclusive;
- a file (CSV or Parquet) with a ``period_start`` column of dates every period apart and one or
  more numeric columns (a weekly flag as in ``data/examples/apparel_season.csv``).

A list of ranges is one column, ``high_season``; a mapping ``{column: [ranges]}`` names several.
The value of a period is the share of its days inside the season (0 to 1), so a week that
straddles the season's start counts for the days it holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.units import FREQ, UNIT_DAYS

__all__ = ["SeasonCalendar"]

_RECURRING = re.compile(r"^(\d{2})-(\d{2})\.\.(\d{2})-(\d{2})$")
_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
FORMS = (
    'recurring ranges "MM-DD..MM-DD" (e.g. "11-01..12-31"), dated ranges "YYYY-MM-DD..YYYY-MM-DD", or a CSV or '
    "Parquet file with period_start and numeric columns"
)


def _month_day(m: str, d: str, entry: str) -> tuple[int, int]:
    month, day = int(m), int(d)
    try:
        pd.Timestamp(year=2001, month=month, day=day)  # a year without 29 February
    except ValueError:
        raise ValueError(
            f"season calendar: {entry!r} names no day of every year ({month:02d}-{day:02d}); "
            + ("29 February is not in every year: use 02-28 or 03-01" if (month, day) == (2, 29) else FORMS)
        ) from None
    return month, day


class SeasonCalendar:
    """A season calendar from its specification (see the module docstring): ``columns`` (the
    seasons' names), :meth:`days` (each day's membership), :meth:`table` (periods of ``freq``) and
    :meth:`share` (the share of a span's days in each season). Refuses, naming the entry and the
    forms accepted, anything it cannot read one way."""

    def __init__(self, spec):
        self.spec = spec
        self._ranges: dict[str, list] = {}
        self._file: pd.DataFrame | None = None
        if isinstance(spec, SeasonCalendar):
            self.spec, self._ranges, self._file = spec.spec, spec._ranges, spec._file
        elif isinstance(spec, (str, Path)) and (
            Path(spec).suffix.lower() in (".csv", ".parquet") or Path(spec).exists()
        ):
            self._file = self._read(Path(spec))
        elif isinstance(spec, Mapping):
            if not spec:
                raise ValueError(f"season calendar: an empty mapping; give {FORMS}")
            for name, ranges in spec.items():
                if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise ValueError(f"season calendar: {name!r} is not a column name (letters, digits, _)")
                self._ranges[name] = self._parse(ranges)
        else:
            self._ranges["high_season"] = self._parse(spec)

    # -- reading ------------------------------------------------------------------------------
    @staticmethod
    def _parse(ranges) -> list:
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, (list, tuple)) or not ranges:
            raise ValueError(f"season calendar: {ranges!r} is not a list of ranges; give {FORMS}")
        out = []
        for entry in ranges:
            text = str(entry).strip().replace(" ", "")
            if m := _RECURRING.match(text):
                out.append(("recurring", _month_day(m[1], m[2], entry), _month_day(m[3], m[4], entry)))
            elif m := _DATED.match(text):
                try:
                    a, b = pd.Timestamp(m[1]), pd.Timestamp(m[2])
                except ValueError:
                    raise ValueError(f"season calendar: {entry!r} holds a date that does not exist") from None
                if b < a:
                    raise ValueError(f"season calendar: {entry!r} ends before it starts")
                out.append(("dated", a, b))
            else:
                raise ValueError(f"season calendar: {entry!r} is not a range; give {FORMS}")
        return out

    @staticmethod
    def _read(path: Path) -> pd.DataFrame:
        if not path.is_file():
            raise ValueError(f"season calendar: {path} is not a file")
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
        if "period_start" not in table.columns or len(table.columns) < 2:
            raise ValueError(
                f"season calendar {path}: needs a period_start column and at least one season column; it has "
                f"{list(table.columns)}"
            )
        starts = pd.to_datetime(table["period_start"], format="%Y-%m-%d", errors="coerce")
        if starts.isna().any():
            raise ValueError(
                f"season calendar {path}: {int(starts.isna().sum())} period_start values are not dates (YYYY-MM-DD)"
            )
        values = table.drop(columns="period_start")
        bad = [
            c
            for c in values.columns
            if not pd.api.types.is_numeric_dtype(values[c]) or not np.isfinite(values[c]).all()
        ]
        if bad:
            raise ValueError(f"season calendar {path}: columns {bad} are not finite numbers")
        steps = np.unique(np.diff(starts.sort_values().to_numpy()).astype("timedelta64[D]").astype(int))
        if len(steps) != 1:
            raise ValueError(f"season calendar {path}: period_start must step by one period; steps of {steps} days")
        return values.astype(float).set_index(pd.DatetimeIndex(starts.to_numpy(), name="period_start")).sort_index()

    # -- values -------------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return list(self._file.columns) if self._file is not None else list(self._ranges)

    @property
    def recurring(self) -> bool:
        """Whether it is known for every date (recurring ranges only): a file or a dated range ends."""
        return self._file is None and all(r[0] == "recurring" for rs in self._ranges.values() for r in rs)

    def days(self, start, end) -> pd.DataFrame:
        """Each day of ``[start, end)`` (rows) in each season (columns, 0 or 1; a file's values
        are its periods' values, every day of a period alike)."""
        idx = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq="D", inclusive="left")
        if self._file is not None:
            f = self._file
            step = (f.index[1] - f.index[0]) if len(f) > 1 else pd.Timedelta(days=7)
            if len(idx) and (idx[0] < f.index[0] or idx[-1] >= f.index[-1] + step):
                raise ValueError(
                    f"the season calendar {self.spec} covers {f.index[0]:%Y-%m-%d} to "
                    f"{f.index[-1] + step - pd.Timedelta(days=1):%Y-%m-%d}; {idx[0]:%Y-%m-%d} to "
                    f'{idx[-1]:%Y-%m-%d} is needed (extend the file, or give recurring ranges "MM-DD..MM-DD")'
                )
            pos = f.index.searchsorted(idx, side="right") - 1
            return pd.DataFrame(f.to_numpy()[pos], index=idx, columns=f.columns)
        out = {}
        md = idx.month * 100 + idx.day
        for name, ranges in self._ranges.items():
            inside = np.zeros(len(idx), bool)
            for kind, a, b in ranges:
                if kind == "dated":
                    inside |= (idx >= a) & (idx <= b)
                else:
                    lo, hi = a[0] * 100 + a[1], b[0] * 100 + b[1]
                    inside |= ((md >= lo) & (md <= hi)) if lo <= hi else ((md >= lo) | (md <= hi))
            out[name] = inside.astype(float)
        return pd.DataFrame(out, index=idx)

    def table(self, start, end, freq: str = FREQ, anchor=None) -> pd.DataFrame:
        """Periods of ``freq`` (``period_start`` every period from ``anchor``, default ``start``,
        until they cover ``end``) and each season's share of their days: the calendar table of
        ``models.TimeVaryingParetoNBD``. A file's own periods are returned as they are."""
        if freq not in UNIT_DAYS:
            raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
        unit = pd.Timedelta(days=UNIT_DAYS[freq])
        first = pd.Timestamp(anchor if anchor is not None else start).normalize()
        if self._file is not None:
            f = self._file
            self.days(start, end)  # a clear error when the file does not cover the span
            return f.loc[(f.index + unit > pd.Timestamp(start)) & (f.index <= pd.Timestamp(end))].reset_index()
        if pd.Timestamp(start) < first:
            first -= unit * int(np.ceil((first - pd.Timestamp(start)) / unit))
        n = int(np.ceil((pd.Timestamp(end) - first) / unit)) + 1
        starts = pd.DatetimeIndex([first + k * unit for k in range(n)]).normalize()
        days = self.days(starts[0], starts[-1] + unit)
        k = np.floor(((days.index - starts[0]) / unit)).astype(int)
        shares = days.groupby(k).mean()
        shares.index = starts[shares.index]
        return shares.rename_axis("period_start").reset_index()

    def share(self, start, end) -> pd.Series:
        """Each season's share of the days of ``(start, end]`` (of a file's: of the days it covers
        there, e.g. a trailing window reaching back before the data began)."""
        a, b = pd.Timestamp(start) + pd.Timedelta(days=1), pd.Timestamp(end) + pd.Timedelta(days=1)
        if self._file is not None:
            a = max(a, self._file.index[0])
        days = self.days(a, b) if a < b else pd.DataFrame(columns=self.columns)
        return days.mean() if len(days) else pd.Series(0.0, index=self.columns)

    def describe(self) -> str:
        if self._file is not None:
            return f"the file {self.spec} ({', '.join(self.columns)})"
        return "; ".join(
            f"{name}: "
            + ", ".join(
                f"{a[0]:02d}-{a[1]:02d}..{b[0]:02d}-{b[1]:02d}"
                if kind == "recurring"
                else f"{a:%Y-%m-%d}..{b:%Y-%m-%d}"
                for kind, a, b in ranges
            )
            for name, ranges in self._ranges.items()
        )

    def __repr__(self) -> str:
        return f"SeasonCalendar({self.describe()})"
