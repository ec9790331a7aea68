"""The hostile-input suite (issue 27): every file of tests/hostile/corpus.py loads exactly as its
row of the table says, or is refused with one DataValidationError whose message names the file
and says what the table says; never silent, never another exception. The command line gives the
same refusals as a clean message. And every hint a refusal gives parses the values it was built
from (a hint that reads 12.50- as +12.50 is a defect)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from hostile.corpus import AS_OF, CAMPAIGNS, CASES, Case, campaign_transactions
from urm_models import cli
from urm_models.core.errors import DataValidationError
from urm_models.data import datasets
from urm_models.data.parsing import THOUSANDS, THOUSANDS_NAMES
from urm_models.experiments.campaign import check_campaign
from urm_models.jobs import pipeline


def _expected_error(case: Case):
    return DataValidationError if case.error == "DataValidationError" else ValueError


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.family}-{c.name}")
def test_each_hostile_file_loads_as_stated_or_is_refused_with_its_message(case, home, tmp_path):
    path = case.write(tmp_path)
    options = {"as_of": AS_OF, **case.options}
    if case.refused:
        with pytest.raises(Exception) as info:
            datasets.load_transactions(path, **options)
        assert type(info.value) is _expected_error(case), (type(info.value), info.value)
        message = str(info.value)
        if case.error == "DataValidationError":
            assert str(path) in message
        missing = [part for part in case.refused if part not in message]
        assert not missing, (missing, message)
        if options.get("errors", "raise") == "raise":
            assert not (home / "data" / "quarantine").exists() or not any((home / "data" / "quarantine").iterdir())
        return
    tx = datasets.load_transactions(path, **options)
    for column, want in case.loaded.items():
        got = tx[column].tolist()
        if column == "ts":
            want = [pd.Timestamp(w) for w in want]
        assert got == want, (column, got, want)


@pytest.mark.parametrize("case", [c for c in CASES if c.refused and not c.options], ids=lambda c: c.name)
def test_the_command_line_refuses_them_with_a_clean_message(case, home, tmp_path, capsys):
    path = case.write(tmp_path)
    code = cli.main(["kpis", "--path", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and str(path) in err, err
    assert all(part in err for part in case.refused), err


@pytest.fixture(scope="module")
def campaign_tx():
    return campaign_transactions()


@pytest.mark.parametrize("case", CAMPAIGNS, ids=lambda c: c.name)
def test_each_hostile_campaign_is_checked_before_anything_is_fitted(case, campaign_tx, home, tmp_path):
    """experiments.campaign.check_campaign (what the refresh calls before 01 runs): the
    campaign's verdict without a model fitted or a feature computed."""
    path = case.write(tmp_path)
    if case.refused:
        with pytest.raises(DataValidationError) as info:
            check_campaign(campaign_tx, path, **case.options)
        missing = [part for part in case.refused if part not in str(info.value)]
        assert not missing and str(path) in str(info.value), (missing, str(info.value))
        return
    summary = check_campaign(campaign_tx, path, **case.options)
    assert {k: summary[k] for k in case.loaded} == case.loaded


# ------------------------------------------------------------------------------ hints
VALUES = [1234.5, 3.0, 1234567.25, 0.75]


def _spell(value: float, decimal: str, thousands: str | None) -> str:
    whole, frac = f"{value:.2f}".split(".")
    if thousands:
        whole = f"{int(whole):,}".replace(",", thousands)
    return f"{whole}{decimal}{frac}"


def _write(path, cells: list[str]) -> None:
    path.write_text("user_id;ts;amount\n" + "".join(f"u{i};2024-01-0{i + 1};{c}\n" for i, c in enumerate(cells)))


CONVENTIONS = [(d, t) for d in (".", ",") for t in THOUSANDS if t != d and (d, t) != (".", None)]


@pytest.mark.parametrize("decimal,thousands", CONVENTIONS, ids=lambda v: repr(v))
def test_every_number_hint_parses_the_values_it_was_built_from(decimal, thousands, tmp_path):
    """The refusal names an option in Python and on the command line; each, applied, reads
    every value of the column as the number it spells."""
    path = tmp_path / "orders.csv"
    _write(path, [_spell(v, decimal, thousands) for v in VALUES])
    with pytest.raises(DataValidationError) as info:
        datasets.load_transactions(path, as_of=AS_OF)
    failure = info.value.failures.iloc[0]
    as_python = eval(f"dict({failure['option']})")  # e.g. decimal=',', thousands='\xa0'
    assert datasets.load_transactions(path, as_of=AS_OF, **as_python)["amount"].tolist() == VALUES
    flags = re.search(r"\((--decimal \S+(?: --thousands \S+)?);", str(info.value)).group(1).split()
    as_cli = {flags[i].lstrip("-"): flags[i + 1] for i in range(0, len(flags), 2)}
    assert as_cli.get("thousands") in (None, ",", ".", *THOUSANDS_NAMES)  # typeable
    assert datasets.load_transactions(path, as_of=AS_OF, **as_cli)["amount"].tolist() == VALUES


SIGNED = {  # how a currency sign and a negative amount are written -> the amount
    "$12.50": 12.5,
    "12.50 $": 12.5,
    "-$7.25": -7.25,
    "$7.25-": -7.25,
    "($7.25)": -7.25,
    "\u2212$7.25": -7.25,
    "USD 3.00": 3.0,
    "3.00USD": 3.0,
    "€4.10": 4.1,
    "4.10 €-": -4.1,
    "kr 99.00": 99.0,
    "R$ 5.50": 5.5,
}


@pytest.mark.parametrize("spelled,value", list(SIGNED.items()))
def test_every_currency_hint_parses_the_values_it_was_built_from(spelled, value, tmp_path):
    path = tmp_path / "orders.csv"
    _write(path, [spelled, spelled.replace("12.50", "1.00").replace("7.25", "2.00")])
    with pytest.raises(DataValidationError) as info:
        datasets.load_transactions(path, as_of=AS_OF, returns="keep")
    sign = re.search(r"currency='([^']+)' removes it", str(info.value)).group(1)
    got = datasets.load_transactions(path, as_of=AS_OF, returns="keep", currency=sign)["amount"].tolist()
    assert got[0] == value, (spelled, sign, got)


def test_the_dotted_groups_hint_names_both_readings_and_each_reads_the_column(tmp_path):
    path = tmp_path / "orders.csv"
    _write(path, ["2.933", "933", "1.250"])
    with pytest.raises(DataValidationError, match="decimal='.' or thousands='.'"):
        datasets.load_transactions(path, as_of=AS_OF)
    assert datasets.load_transactions(path, as_of=AS_OF, thousands=".")["amount"].tolist() == [2933.0, 933.0, 1250.0]
    assert datasets.load_transactions(path, as_of=AS_OF, decimal=".")["amount"].tolist() == [2.933, 933.0, 1.25]


def test_the_refresh_runs_the_campaign_checks_before_any_notebook(home, tmp_path, campaign_tx):
    """The refresh's up-front check calls check_campaign on its transactions: a campaign it
    refuses stops the refresh before a notebook runs or a model is fitted."""
    orders = tmp_path / "orders.csv"
    campaign_tx.assign(ts=campaign_tx["ts"].dt.strftime("%Y-%m-%d")).to_csv(orders, index=False)
    by_name = {c.name: c for c in CAMPAIGNS}
    for name in ("control_beside_Control", "ids_written_otherwise", "one_user_arm"):
        sends = by_name[name].write(tmp_path)
        params = {"path": str(orders), "cutoff": "2024-02-28", "campaign": str(sends), "control": "control"}
        with pytest.raises(pipeline.RefreshError, match="the assignment file is refused") as info:
            pipeline.refresh({**params, "campaign_window": 4}, progress=False)
        assert by_name[name].refused[0] in str(info.value)
    with pytest.raises(pipeline.RefreshError, match="campaign_window 0 is not a positive"):
        pipeline.refresh({**params, "campaign": str(by_name["campaign_ok"].write(tmp_path)), "campaign_window": 0})
    assert not (home / "reports" / "runs").exists() or not any((home / "reports" / "runs").iterdir())


def _parquet_types():
    """A column of three values of every type Parquet stores (those pyarrow writes)."""
    import datetime as dt
    import decimal

    import pyarrow as pa

    day = [dt.datetime(2024, 1, 1 + i, 10) for i in range(3)]
    out = {
        **{f"int{b}": pa.array([1, 2, 3], getattr(pa, f"int{b}")()) for b in (8, 16, 32, 64)},
        **{f"uint{b}": pa.array([1, 2, 3], getattr(pa, f"uint{b}")()) for b in (8, 16, 32, 64)},
        "float32": pa.array([1.5, 2.0, 3.0], pa.float32()),
        "float64": pa.array([1.5, 2.0, 3.0]),
        "decimal128": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2"), None], pa.decimal128(10, 2)),
        "decimal256": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2"), None], pa.decimal256(40, 2)),
        "string": pa.array(["a", "b", "c"]),
        "large_string": pa.array(["a", "b", "c"], pa.large_string()),
        "binary": pa.array([b"a", b"b", b"c"]),
        "large_binary": pa.array([b"a", b"b", b"c"], pa.large_binary()),
        "fixed_size_binary": pa.array([b"ab", b"cd", b"ef"], pa.binary(2)),
        "bool": pa.array([True, False, True]),
        "date32": pa.array([d.date() for d in day], pa.date32()),
        "date64": pa.array([d.date() for d in day], pa.date64()),
        **{f"timestamp_{u}": pa.array(day, pa.timestamp(u)) for u in ("s", "ms", "us", "ns")},
        "timestamp_tz": pa.array(day, pa.timestamp("us", tz="Europe/Berlin")),
        "time32": pa.array([dt.time(1), dt.time(2), dt.time(3)], pa.time32("s")),
        "time64": pa.array([dt.time(1), dt.time(2), dt.time(3)], pa.time64("us")),
        "duration": pa.array([dt.timedelta(1)] * 3, pa.duration("s")),
        "dictionary": pa.array(["a", "b", "a"]).dictionary_encode(),
        "list": pa.array([[1], [2], [3]]),
        "large_list": pa.array([[1], [2], [3]], pa.large_list(pa.int64())),
        "fixed_size_list": pa.array([[1, 2], [3, 4], [5, 6]], pa.list_(pa.int64(), 2)),
        "struct": pa.array([{"a": 1}, {"a": 2}, {"a": 3}]),
        "map": pa.array([[("k", 1)], [("k", 2)], [("k", 3)]], pa.map_(pa.string(), pa.int64())),
        "null": pa.array([None, None, None], pa.null()),
    }
    return out


@pytest.mark.slow
@pytest.mark.parametrize("column", ["user_id", "ts", "amount", "extra"])
def test_every_parquet_type_in_every_column_loads_or_is_refused_cleanly(column, tmp_path, home):
    """Every Parquet type as each column of the contract (and as a column it does not read):
    pandas loads it with the contract's types or refuses it with a DataValidationError naming the
    file, and the contract of the read-as-is paths accepts it or refuses it the same way; never
    another exception (a nested column used to be a TypeError, a year-2999 time an overflow)."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from urm_models.data import parquet_contract

    base = {
        "user_id": pa.array(["u1", "u2", "u3"]),
        "ts": pa.array([dt.datetime(2024, 1, 1 + i) for i in range(3)], pa.timestamp("us")),
        "amount": pa.array([1.0, 2.0, 3.0]),
    }
    outcomes = {}
    for name, values in _parquet_types().items():
        path = tmp_path / f"{column}-{name}.parquet"
        pq.write_table(pa.table({**base, column: values}), path)
        try:
            tx = datasets.load_transactions(path, as_of=AS_OF)
            assert tx["user_id"].map(lambda v: isinstance(v, str) and v != "").all(), name
            assert str(tx["ts"].dtype) == "datetime64[ns]" and tx["amount"].dtype == "float64", name
            outcomes[name] = "loaded"
        except DataValidationError as exc:
            assert str(path) in str(exc), name
            outcomes[name] = "refused"
        try:
            parquet_contract.check_transactions(str(path), engine="duckdb", now=AS_OF)
        except DataValidationError as exc:
            assert str(path) in str(exc), name
    assert "loaded" in outcomes.values()
    if column != "extra":
        assert "refused" in outcomes.values()
    else:  # a column the contract does not read never stops a load
        assert set(outcomes.values()) == {"loaded"}, outcomes
