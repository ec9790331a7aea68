"""The ``urm`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .core.errors import (
    DatabaseUnavailable,
    DataValidationError,
    ErasureLogError,
    PublishError,
    RefreshError,
    RefreshLocked,
    RemoteStore,
    SettingsError,
    StoreUnavailable,
    UsageError,
)
from .core.paths import safe_name
from .core.units import FREQ, REPORT_FREQ, UNIT_DAYS

# Each command imports the package's modules it runs inside its own function ("lazy:" marks
# them): they bring pandas (~0.2 s to import), the data contract's pandera (~0.45 s in all) and,
# for some, MLflow or Spark; `urm --help` and a command refused for its arguments import none of
# them (python -X importtime).
EX_TEMPFAIL = 75  # sysexits: "try again later" (another refresh holds the lock)
EX_USAGE = 2  # bad arguments: an unknown data set, an unsafe name, a config that is not plain YAML

EXIT_CODES = (
    "exit codes:\n"
    "   0  success\n"
    "   1  the input was refused or a step failed (what was there before stays)\n"
    "   2  bad arguments (unknown data set, unsafe name, unreadable config)\n"
    "  75  another refresh, score, forget or prune holds the lock: try again later"
)


def _load_config(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {p} not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"config file {p} is not plain YAML ({first}): only parameter: value mappings, no tags "
            "such as !!python/object"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {p} must hold a mapping of parameter: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _cmd_refresh(args) -> int:
    # lazy: see the note at the top
    from .jobs.pipeline import DEFAULT_PARAMS, refresh

    params = _load_config(args.config)
    if args.run_id is not None:
        try:
            safe_name(args.run_id, "run id (--run-id)")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.dataset is not None or "dataset" in params:
        name = args.dataset if args.dataset is not None else params["dataset"]
        _known_dataset(str(name), bool(args.path or params.get("path")))
    for key in DEFAULT_PARAMS:
        val = getattr(args, key, None)
        if val is not None and key != "read":
            params[key] = val
    read = _read_options(args)
    if read:
        params["read"] = {**params.get("read", {}), **read}
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        print(f"urm refresh: unknown parameter(s) {sorted(unknown)}; known: {sorted(DEFAULT_PARAMS)}", file=sys.stderr)
        return 2
    notebooks = args.notebooks.split(",") if args.notebooks else None
    # lazy: see the note at the top
    from .jobs.pipeline import NOTEBOOKS

    if notebooks and [n for n in notebooks if n not in NOTEBOOKS]:
        raise UsageError(
            f"--notebooks takes names of the project's notebooks, not paths: unknown "
            f"{[n for n in notebooks if n not in NOTEBOOKS]}; known: {NOTEBOOKS}"
        )
    try:
        manifest = refresh(params, notebooks=notebooks, run_id=args.run_id, progress=not args.quiet)
    except RefreshLocked as exc:
        print(f"urm refresh: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except RefreshError as exc:
        print(f"urm refresh: {exc}", file=sys.stderr)
        return 1
    print(
        f"refresh {manifest['run_id']}: {manifest['status']} in {manifest['seconds']:.1f}s; "
        f"reports in reports/runs/{manifest['run_id']}/"
    )
    return 0


def _read_options(args) -> dict:
    """How to read your own file, from --columns canonical=yours,... and the reading flags."""
    read = {}
    if args.columns:
        pairs = [kv.split("=", 1) for kv in args.columns.split(",") if kv.strip()]
        bad = [kv for kv in pairs if len(kv) != 2 or not kv[0].strip() or not kv[1].strip()]
        if bad:
            raise UsageError(
                f"--columns takes canonical=yours pairs separated by commas, "
                f"e.g. user_id=customer,ts=order_date,amount=total; got {args.columns!r}"
            )
        read["columns"] = {k.strip(): v.strip() for k, v in pairs}
    for key in (
        "date_format",
        "tz",
        "dst",
        "decimal",
        "thousands",
        "currency",
        "sep",
        "encoding",
        "errors",
        "duplicates",
        "returns",
        "null_ids",
    ):
        if getattr(args, key, None):
            read[key] = getattr(args, key)
    return read


def _dataset(args) -> str:
    """--dataset, else your own file's data set name (as the refresh names it), else cdnow. An
    empty or unsafe name, or an unknown shipped one without --path, is a UsageError (exit 2)."""
    # lazy: see the note at the top
    from .data.datasets import dataset_name

    if args.dataset is not None:
        return _known_dataset(args.dataset, bool(getattr(args, "path", None)))
    return dataset_name(args.path) if args.path else "cdnow"


def _known_dataset(name: str, own_file: bool) -> str:
    import difflib

    # lazy: see the note at the top
    from .data.datasets import DATASETS

    try:
        safe_name(name, "data set name (--dataset)")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not own_file and name not in DATASETS:
        near = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise UsageError(
            f"unknown data set {name!r}{hint}; shipped ones are {sorted(DATASETS)}, or give your own file with --path"
        )
    return name


def _cmd_kpis(args) -> int:
    # lazy: see the note at the top
    from . import features
    from .data import datasets

    dataset = _dataset(args)
    tx = datasets.load_dataset(dataset, args.path or "", **_read_options(args))
    if "ts" not in tx:
        print(f"urm kpis: {dataset} is not a transactions data set", file=sys.stderr)
        return 2
    table = features.kpis(tx, freq=args.freq, cutoff=args.cutoff, by=args.by)
    sys.stdout.write(kpi_csv(table))
    return 0


def kpi_csv(table) -> str:
    """KPIs as CSV a spreadsheet reads as it is: counts as whole numbers, shares and rates to
    four decimals, money to the cent; never scientific notation."""
    import pandas as pd

    out = table.copy()
    for col in out.columns:
        values = out[col]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue
        form = "{:.0f}" if pd.api.types.is_integer_dtype(values) else "{:.4f}" if _is_rate(col) else "{:.2f}"
        out[col] = values.map(lambda v, form=form: "" if pd.isna(v) else form.format(v))
    return out.to_csv()


def _is_rate(column: str) -> bool:
    return any(word in column for word in ("rate", "share", "retention", "churn", "pct", "ratio"))


def _cmd_ui(args) -> int:
    import os

    # lazy: see the note at the top
    from .serve.tracking import UI_LINK_QUERY, store_label, ui_command

    try:
        argv, env = ui_command(args.host, args.port)
    except RemoteStore as exc:
        print(f"urm ui: {exc}")
        return 0
    print(
        f"MLflow UI on http://{args.host}:{args.port}/#/experiments{UI_LINK_QUERY} (the training runs; store "
        f"{store_label(env['MLFLOW_BACKEND_STORE_URI'])})",
        file=sys.stderr,
    )
    os.execve(argv[0], argv, {**os.environ, **env})
    return 0  # not reached


def _cmd_score(args) -> int:
    # lazy: see the note at the top
    from .core.io import output_umask
    from .core.locks import refresh_lock
    from .serve.scoring import ScoringOptions, score_users, write_predictions

    dataset = _dataset(args)
    options = ScoringOptions(freq=args.freq)
    try:
        # the refresh's lock: a score and a refresh never interleave their writes
        with output_umask(), refresh_lock(dataset=dataset):
            if args.engine == "spark":
                # lazy: see the note at the top
                from .serve import spark_scoring

                table, facts = spark_scoring.score_users_in_spark(
                    dataset,
                    args.as_of,
                    path=args.path or "",
                    read=_read_options(args),
                    models_from=args.models_from,
                    options=options,
                )
                path = spark_scoring.write_table(table, dataset, args.as_of, metadata=facts)
                n, versions = sum(1 for _ in path.glob("*.parquet")), facts["model_versions"]
                print(f"scored in Spark with {versions}: {path} ({n} Parquet part(s))")
                _publish_sql(lambda: spark_scoring.read_table(dataset, args.as_of), dataset, facts)
                return 0
            if args.batches:
                return _score_streamed(args, dataset, options)
            table = score_users(
                dataset,
                args.as_of,
                path=args.path or "",
                read=_read_options(args),
                models_from=args.models_from,
                options=options,
            )
            as_of = table["as_of"].iloc[0]
            path = write_predictions(table, dataset, as_of)
            print(f"{len(table):,} users scored with {table['model_versions'].iloc[0]}: {path}")
            _publish_sql(lambda: table, dataset, table.attrs)
    except RefreshLocked as exc:
        print(f"urm score: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    return 0


def _score_streamed(args, dataset: str, options) -> int:
    """`urm score --batches N`: the one-box table for many users, memory per slice of users."""
    # lazy: see the note at the top
    from .data import datasets, parquet_contract
    from .serve.scoring import point_latest, predictions_path, score_to_parquet, transaction_champions

    if args.as_of is None:
        raise ValueError("as_of is required for transactions (--as-of, the date to score at)")
    if datasets.dataset_kind(dataset, args.path or "") != "transactions":
        raise ValueError(
            f"--batches streams transactions data sets; {dataset!r} is a "
            f"{datasets.dataset_kind(dataset, args.path or '')} table"
        )
    # lazy: see the note at the top
    from .serve.scoring import refuse_measured_campaign

    source = args.models_from or dataset
    refuse_measured_campaign(source, "--batches")
    p = Path(args.path) if args.path else None
    read = _read_options(args)
    if p is not None and p.suffix.lower() in {".parquet", ".pq"} and set(read) <= {"duplicates", "returns"}:
        data = str(p)  # DuckDB reads it as it is: held to the contract in SQL first
        parquet_contract.check_transactions(data, engine="duckdb", **read)
    else:
        data = datasets.load_dataset(dataset, args.path or "", **read)
    # lazy: see the note at the top
    from .serve.scoring import model_facts

    m = transaction_champions(source)
    path = predictions_path(dataset, args.as_of)
    facts = score_to_parquet(
        data,
        args.as_of,
        m["clv_model"],
        path,
        batches=args.batches,
        churn_model=m["churn_model"],
        churn_window=m["churn_window"],
        model_versions=m["versions"],
        options=options,
        dataset=dataset,
        metadata={"dataset": dataset, "p_churn_source": m["p_churn_source"], **model_facts(source)},
    )
    point_latest(path.parent)
    print(f"{facts['rows']:,} users scored with {m['versions']} in {args.batches} slices: {path}")
    _publish_sql(lambda: __import__("pandas").read_parquet(path), dataset, model_facts(source))
    return 0


def _publish_sql(table, dataset: str, facts) -> None:
    """With a team database set, the table just published goes to its SQL table too."""
    # lazy: see the note at the top
    from .core.settings import database_url
    from .serve.sqltable import publish_table

    if not database_url():
        return
    facts = dict(facts or {})
    out = publish_table(table(), dataset, metadata={k: facts.get(k) for k in ("models_trained_on", "model_store")})
    print(f"and to {out['database']}, table {out['table']} ({out['rows']:,} rows)")


def _cmd_forget(args) -> int:
    # lazy: see the note at the top
    from .jobs.forget import forget, known_datasets

    if args.dataset is not None:
        try:
            safe_name(args.dataset, "data set name (--dataset)")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        known = known_datasets()
        if args.dataset not in known:
            import difflib

            near = difflib.get_close_matches(args.dataset, known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise UsageError(
                f"unknown data set {args.dataset!r}{hint}: nothing of it is kept here; known: "
                f"{sorted(known)}. Without --dataset the users are erased from every data set"
            )
    try:
        done = forget(args.user_ids, dataset=args.dataset)
    except RefreshLocked as exc:
        print(f"urm forget: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    where = "every data set" if done["dataset"] is None else f"data set {done['dataset']!r}"
    print(f"erased {done['erased']} user(s) from {where}; logged in {done['log']}")
    for pseudonym, removed in done["removed"].items():
        what = ", ".join(f"{k}: {v}" for k, v in removed.items()) or "nothing stored yet"
        print(f"  {pseudonym}: {what}")
    return 0


def _cmd_prune(args) -> int:
    # lazy: see the note at the top
    from .jobs.pipeline import prune

    try:
        done = prune(args.keep)
    except RefreshLocked as exc:
        print(f"urm prune: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    print(
        f"removed {len(done['removed'])} run folder(s); kept {len(done['kept'])} newest"
        + (f" and {len(done['kept_for_latest'])} that a latest table comes from" if done["kept_for_latest"] else "")
    )
    return 0


def _own_file_arguments(parser) -> None:
    # lazy: see the note at the top
    from .data.parsing import THOUSANDS_OPTIONS

    parser.add_argument("--path", help="your own transactions file (CSV or Parquet) instead of a shipped data set")
    parser.add_argument(
        "--columns", help="its column names, canonical=yours: user_id=customer,ts=order_date,amount=total"
    )
    parser.add_argument(
        "--date-format",
        dest="date_format",
        help="strptime format of its dates, e.g. %%d/%%m/%%Y, or excel (default: one layout "
        "inferred per column; day-/month-first is never guessed)",
    )
    parser.add_argument(
        "--tz",
        help="IANA time zone: naive times are read in it, times with an offset "
        "converted to it (required when offsets are mixed)",
    )
    parser.add_argument(
        "--dst",
        choices=["reject", "shift"],
        help="local times in a DST gap or fold: reject the rows (default) or shift them",
    )
    parser.add_argument("--decimal", choices=[".", ","], help="decimal mark of amounts (default .)")
    parser.add_argument(
        "--thousands",
        choices=THOUSANDS_OPTIONS,
        help="thousands separator of amounts (default none); nbsp, narrow-nbsp, rsquo: no-break spaces, ’",
    )
    parser.add_argument("--currency", help="currency symbol or code to remove from amounts, e.g. € or USD")
    parser.add_argument("--sep", help="delimiter (default: told from the header; tab for .tsv)")
    parser.add_argument("--encoding", help="text encoding (default utf-8)")
    parser.add_argument(
        "--errors",
        choices=["raise", "quarantine"],
        help="bad rows: refuse the file (default) or set them aside in data/quarantine/",
    )
    parser.add_argument(
        "--duplicates",
        choices=["reject", "keep"],
        help="exact duplicate rows: reject (default) or keep (files without an order id)",
    )
    parser.add_argument(
        "--returns", choices=["reject", "keep"], help="negative amounts (returns, refunds): reject (default) or keep"
    )
    parser.add_argument(
        "--null-ids",
        dest="null_ids",
        choices=["refuse", "drop", "keep"],
        help="user ids that are null words (NULL, N/A, NA, -, ...; a guest checkout): refuse the file "
        "(default), drop those rows, or keep them as ids",
    )


def main(argv: list[str] | None = None) -> int:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="urm", description="urm-models: user relationship management models")
    parser.add_argument("--version", action="version", version=f"urm-models {version('urm-models')}")
    sub = parser.add_subparsers(dest="command", required=True)

    # lazy: see the note at the top
    from .jobs.pipeline import DEFAULT_PARAMS as D

    r = sub.add_parser(
        "refresh",
        help="run the notebooks in order with papermill",
        description="Run the notebooks that apply to a data set in order (one kernel), keep them under "
        "reports/runs/<run-id>/ with a manifest, and publish data/predictions/<dataset>/<as_of>/.",
        epilog="exit codes:\n"
        "   0  success: the table is published\n"
        "   1  a notebook failed or the input was refused (the previous table stays)\n"
        "   2  bad arguments\n"
        "  75  another refresh, score, forget or prune holds the lock: try again later",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--config", help="YAML file of parameters (command-line flags win)")
    r.add_argument(
        "--dataset",
        help="shipped data set: cdnow, cdnow_sample or telco; with --path, "
        f"the name of yours (default: {D['dataset']}; with --path, the file's name)",
    )
    _own_file_arguments(r)
    r.add_argument(
        "--cutoff", help=f"calibration cut-off date, inclusive (default: {D['cutoff']}; required with --path)"
    )
    r.add_argument(
        "--holdout-end",
        dest="holdout_end",
        help=f"last day of the holdout period (default: {D['holdout_end']}; with --path, the last purchase)",
    )
    r.add_argument("--freq", choices=list(UNIT_DAYS), help=f"time unit of the models (default: {D['freq']})")
    r.add_argument("--seed", type=int, help=f"random seed (default: {D['seed']})")
    r.add_argument("--fast", action="store_const", const=True, help="small fits, for tests (default: off)")
    r.add_argument(
        "--as-of", dest="as_of", help="scoring date (default: the cut-off for transactions, today for customer tables)"
    )
    r.add_argument(
        "--campaign",
        help="your campaign's assignment file (user_id, arm, sent_at; CSV or Parquet) on "
        "the transactions data set: 07 measures it and the table gets each user's recommended arm",
    )
    r.add_argument("--control", help="the assignment file's control arm (no contact)")
    r.add_argument(
        "--campaign-window",
        dest="campaign_window",
        type=float,
        help=f"the outcome window after each send, in --freq periods (default: {D['campaign_window']})",
    )
    r.add_argument("--notebooks", help="comma-separated subset, in order (default: all that apply)")
    r.add_argument("--run-id", dest="run_id", help="name of the run folder (default: <time>-<dataset>)")
    r.add_argument("--quiet", action="store_true", help="no progress bar (default: a bar per cell)")
    r.add_argument(
        "--keep-snapshot",
        dest="keep_snapshot",
        action="store_const",
        const=True,
        help="keep data/snapshots/<run-id>/, the validated copy of your file (default: deleted)",
    )
    r.set_defaults(func=_cmd_refresh)

    k = sub.add_parser(
        "kpis",
        help="print relationship KPIs per period as CSV",
        description="Relationship KPIs per period (active, new, returning users, revenue, retention) "
        "of a transactions data set, as CSV on standard output.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    k.add_argument(
        "--dataset", help="shipped data set, cdnow or cdnow_sample (default: cdnow); with --path, the name of yours"
    )
    _own_file_arguments(k)
    k.add_argument(
        "--freq", default=REPORT_FREQ, choices=list(UNIT_DAYS), help=f"period length (default: {REPORT_FREQ})"
    )
    k.add_argument("--cutoff", help="last day counted (default: the last purchase)")
    k.add_argument(
        "--by", choices=["cohort"], help="one row per period and first-purchase cohort (default: per period)"
    )
    k.set_defaults(func=_cmd_kpis)

    s = sub.add_parser(
        "score",
        help="score a data set with the champion models and publish the table",
        description="Score a data set with its champion models from the registry and publish the "
        "relationship table to data/predictions/<dataset>/<as_of>/ (and to the team "
        "database's table when team.yaml names one).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--dataset", help="shipped data set (default: cdnow); with --path, the name of yours")
    _own_file_arguments(s)
    s.add_argument(
        "--as-of", dest="as_of", help="scoring date (transactions: required; customer tables: default today)"
    )
    s.add_argument(
        "--freq", default=FREQ, choices=list(UNIT_DAYS), help=f"time unit the models were fitted in (default: {FREQ})"
    )
    s.add_argument(
        "--models-from",
        dest="models_from",
        metavar="DATASET",
        help="score with another data set's champion models (default: the data set's own; "
        "a data set without champions is an error naming those that have some)",
    )
    s.add_argument(
        "--batches",
        type=int,
        default=0,
        metavar="N",
        help="local engine: score the users in N slices and rank them in DuckDB, so that memory "
        "follows a slice, not the user count (tens of millions of users on one machine)",
    )
    s.add_argument(
        "--engine",
        default="local",
        choices=["local", "spark"],
        help="local: one process (default); spark: features, models, ranks and tiers in Spark, "
        "Parquet partitioned by as_of under data/predictions/<dataset>/spark/ (the extra "
        "urm-models[spark]; docs/scaling.md)",
    )
    s.set_defaults(func=_cmd_score)

    f = sub.add_parser(
        "forget",
        help="erase users from every table, report and artifact, and log it (GDPR art. 17)",
        description="Erase users from every predictions table (Parquet, Spark partitions, the team "
        "database), quarantine file, snapshot, executed notebook, MLflow artifact and "
        "exported model, and append the erasure to data/erasure/erasures.jsonl: later "
        "loads drop their rows.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f.add_argument("user_ids", nargs="+", metavar="USER_ID", help="ids as they appear in the data")
    f.add_argument(
        "--dataset", help="only this data set, one this project keeps something of (default: every data set)"
    )
    f.set_defaults(func=_cmd_forget)

    pr = sub.add_parser(
        "prune",
        help="remove old run folders (reports/runs/) and their snapshots",
        description="Remove all but the newest --keep run folders under reports/runs/ (executed "
        "notebooks and manifests) and the snapshots of those runs under data/snapshots/. The runs "
        "that a data set's latest table comes from are always kept. Holds the refresh lock.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument(
        "--keep",
        type=int,
        required=True,
        help="how many of the newest runs to keep; the runs that the latest tables come from are always kept",
    )
    pr.set_defaults(func=_cmd_prune)

    u = sub.add_parser(
        "ui",
        help="the MLflow UI on the project's store (one worker, no job runners)",
        description="Start the MLflow UI on the project's own store (mlruns/mlflow.db) with one web "
        "worker and no background job runners, and print the link that opens the experiments on "
        "their training runs. With a team's MLflow server (team.yaml's tracking_uri) nothing is "
        "started: it prints the server's address, without its password.",
        epilog="exit codes:\n   0  the UI ran (or the server's address was printed)\n   1  the store is not usable",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    u.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    u.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    u.set_defaults(func=_cmd_ui)

    # lazy: see the note at the top
    from .core.redaction import ScrubbingStream

    # everything this command prints, its logs and any traceback included, without passwords
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbingStream(sys.stdout), ScrubbingStream(sys.stderr)
    try:
        return _main(parser, argv)
    finally:
        for wrapper in (sys.stdout, sys.stderr):
            wrapper.flush()
        sys.stdout, sys.stderr = streams


def _main(parser, argv) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # papermill logs every notebook's paths and kernel at INFO; our progress bar and manifest say it
    logging.getLogger("papermill").setLevel(logging.WARNING)
    # traitlets says at INFO that it registered the kernel on a first run
    logging.getLogger("traitlets").setLevel(logging.WARNING)
    # MLflow configures its own logger at INFO when imported and says there that it created its
    # database tables or validated an input example: WARNING for this process and the kernels
    # it starts (they inherit the environment)
    import os

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # lazy: see the note at the top
    from .core.io import output_umask

    try:
        with output_umask():
            code = args.func(args)
            if args.command in ("score", "forget"):
                # lazy: see the note at the top
                from .jobs.pipeline import restrict_outputs

                restrict_outputs()
            return code
    except UsageError as exc:
        print(f"urm {args.command}: {exc}", file=sys.stderr)
        return EX_USAGE
    except DataValidationError as exc:
        print(f"urm {args.command}: invalid input:\n{exc}", file=sys.stderr)
        return 1
    except (
        LookupError,
        ValueError,
        ErasureLogError,
        FileNotFoundError,
        StoreUnavailable,
        DatabaseUnavailable,
        PublishError,
        SettingsError,
    ) as exc:
        print(f"urm {args.command}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: its traceback for the report, through the redaction like the rest
        import traceback

        traceback.print_exc(file=sys.stderr)
        print(
            f"urm {args.command}: unexpected error ({type(exc).__name__}: {exc}); this is a bug of urm-models, "
            "please report it with the lines above (passwords are masked)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
