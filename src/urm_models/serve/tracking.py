"""MLflow in one place: which store, which experiments, and what every run records.

The store is SQLite inside ``mlruns/`` (``mlruns/mlflow.db``) with artifacts under
``mlruns/artifacts/``: MLflow 3 refuses the plain ``./mlruns`` file store unless told
otherwise, and SQLite also carries the model registry. A team's server replaces it through the
team setting (:mod:`urm_models.core.settings`: ``team.yaml``'s ``tracking_uri``, or
``MLFLOW_TRACKING_URI``; docs/team.md). Every run made through :func:`start_run` is tagged with the git commit, the
notebook it came from and, through :func:`log_dataset`, the fingerprint of the data it saw.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

from ..core import locks, paths, settings
from ..core.errors import RemoteStore, StoreUnavailable
from ..core.io import dir_mode, make_dirs
from ..core.privacy import masked
from ..core.redaction import scrub, scrub_obj
from ..data.datasets import fingerprint

log = logging.getLogger(__name__)


#: One experiment per model family.
EXPERIMENTS = {
    "churn": "urm-churn",
    "survival": "urm-survival",
    "clv": "urm-clv",
    "kpis": "urm-kpis",
    "uplift": "urm-uplift",
}


def default_tracking_uri() -> str:
    """The project's own store: SQLite at ``mlruns/mlflow.db`` (the folder is made when the
    store is used: :func:`configure`)."""
    return f"sqlite:///{paths.mlruns_dir() / 'mlflow.db'}"


def tracking_uri() -> str:
    """The tracking store in use: the team setting (``MLFLOW_TRACKING_URI``, else ``team.yaml``'s
    ``tracking_uri``), else ``mlruns/mlflow.db``."""
    return settings.get("tracking_uri")[0] or default_tracking_uri()


def is_server(uri: str | None = None) -> bool:
    """Whether the store is an MLflow server (http/https): it serves the artifacts itself."""
    return (uri or tracking_uri()).startswith(("http://", "https://"))


def artifact_root() -> str | None:
    """Where new experiments keep their artifacts: ``mlruns/artifacts/`` for the project's own
    store, the team's ``artifact_root`` for a database named directly, nothing for a server
    (its ``--artifacts-destination`` decides). A database named directly without an
    ``artifact_root`` is refused: its artifacts would land on each machine's own disk."""
    uri = tracking_uri()
    if uri == default_tracking_uri():
        return (paths.mlruns_dir() / "artifacts").as_uri()
    if is_server(uri):
        return None
    root, _ = settings.get("artifact_root")
    if not root:
        raise ValueError(
            f"the tracking store {store_label(uri)} is a database named directly: its artifacts would "
            f"land in each machine's own mlruns/. Run an MLflow server on it and set tracking_uri to the "
            f"server's http:// address (docs/team.md), or set artifact_root (a shared folder or bucket)"
        )
    return root.rstrip("/")


def check_store(timeout: float = 15.0) -> str:
    """Reach the tracking store before anything is fitted (a refresh calls it first): the
    project's own store always answers; a server must answer its API (a dead server, refused
    credentials and a server that refuses this machine's Host header are each a
    :class:`StoreUnavailable` that says so); a database named directly must accept a
    connection. Returns the store as it may be shown."""
    uri = tracking_uri()
    label, source = store_label(uri), settings.get("tracking_uri")[1]
    if uri == default_tracking_uri():
        return label
    if is_server(uri):
        import requests

        headers, auth = {}, None
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
        verify = False if insecure else (os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True)
        try:
            answer = requests.get(
                uri.rstrip("/") + "/api/2.0/mlflow/experiments/search",
                params={"max_results": 1},
                headers=headers,
                auth=auth,
                timeout=timeout,
                verify=verify,
            )
        except requests.RequestException as exc:
            raise StoreUnavailable(
                f"the MLflow server {label} does not answer ({type(exc).__name__}): start it, or correct "
                f"tracking_uri ({source}); nothing was run"
            ) from None
        if answer.status_code == 403 and "host" in answer.text.lower():
            raise StoreUnavailable(
                f"the MLflow server {label} refuses this machine (403 {answer.text.strip()[:80]!r}): start it "
                f"with --allowed-hosts naming the address members use (docs/team.md); nothing was run"
            )
        if answer.status_code in (401, 403):
            raise StoreUnavailable(
                f"the MLflow server {label} refuses the credentials ({answer.status_code}): check the user and "
                f"password of tracking_uri ({source}) or MLFLOW_TRACKING_USERNAME/PASSWORD; nothing was run"
            )
        if not answer.ok:
            raise StoreUnavailable(
                f"the MLflow server {label} answers {answer.status_code} to its API: is {label} an MLflow "
                f"server? ({source}); nothing was run"
            )
        return label
    artifact_root()  # a database named directly needs a shared artifact root: refused before
    from sqlalchemy.exc import SQLAlchemyError

    eng = locks.engine(uri)
    try:
        with eng.connect():
            pass
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise StoreUnavailable(
            f"the tracking database {label} cannot be reached ({scrub(first[0] if first else type(exc).__name__)}); "
            f"correct tracking_uri ({source}); nothing was run"
        ) from None
    finally:
        eng.dispose()
    return label


def _uses_local_store() -> bool:
    # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI itself, so compare, don't test presence
    return tracking_uri() == default_tracking_uri()


class _PickleNotices(logging.Filter):
    """Drops the notice MLflow logs as a WARNING each time a model is saved with pickle (our
    scikit-learn pipelines, whose XGBoost wrapper skops cannot represent) or a Python model
    object (the CLV and survival pyfuncs). The models must be pickled; the notice says nothing
    about this run. Filtering it is the only remedy: the cause is MLflow's blanket notice."""

    NOTICES = (
        "Saving scikit-learn models in the pickle or cloudpickle format",
        "Passing a Python object as `python_model`",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.NOTICES)


def configure() -> str:
    """Point MLflow at the project's store; return the URI."""
    import mlflow

    uri = tracking_uri()
    if uri == default_tracking_uri():
        make_dirs(paths.mlruns_dir())
    # against a server MLflow prints "View run ... at: <url>" after every run: the run's id is in
    # the notebook's output already, the URL in the manifest's settings
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # loading a model from a server downloads its artifacts behind a progress bar per model
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow copies the project's uv.lock (1 MB) and pyproject.toml into every pyfunc model it
    # logs from a uv project; our models pin their requirements (_pip_requirements) instead
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name in ("mlflow.sklearn", "mlflow.pyfunc"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _PickleNotices) for f in logger.filters):
            logger.addFilter(_PickleNotices())
    return uri


#: What an experiment of model training runs is to MLflow 3's UI (the tag of its experiment kind).
#: MLflow 3.17's UI also has a global GenAI / Model training switch (top left, remembered by the
#: browser) that opens experiments on the GenAI "Overview" until it is flipped: the links urm
#: prints set it (:data:`UI_LINK_QUERY`).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
UI_LINK_QUERY = "?workflowType=machine_learning"


def ensure_experiment(name: str) -> str:
    """The id of experiment ``name``, created if missing (artifacts under :func:`artifact_root`),
    tagged as a model-training experiment so that the UI opens it on its runs. In the project's
    own store the empty ``Default`` experiment MLflow creates with the database is deleted:
    every run of ours goes to a named experiment."""
    import mlflow

    configure()
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        kwargs = {"tags": dict([EXPERIMENT_KIND])}
        root = artifact_root()
        if root is not None:
            kwargs["artifact_location"] = f"{root}/{name}"
        try:
            exp_id = client.create_experiment(name, **kwargs)
        except Exception:  # created meanwhile by a concurrent process
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            exp_id = exp.experiment_id
        _drop_empty_default(client)
        return exp_id
    if exp.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:  # a store from before the tag
        client.set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
    _drop_empty_default(client)
    return exp.experiment_id


_DEFAULT_CHECKED: set[str] = set()


def _drop_empty_default(client) -> None:
    """Delete the project store's ``Default`` experiment if it is empty (once per process and
    store; a team server's is left alone: other tools may log there)."""
    from mlflow.exceptions import MlflowException

    uri = tracking_uri()
    if not _uses_local_store() or uri in _DEFAULT_CHECKED:
        return
    _DEFAULT_CHECKED.add(uri)
    try:
        default = client.get_experiment("0")
        if default.lifecycle_stage == "active" and not client.search_runs(["0"], max_results=1):
            client.delete_experiment("0")
    except MlflowException:
        pass


def git_commit() -> str:
    """HEAD of the source checkout, with ``-dirty`` when tracked files changed; ``unknown`` else."""
    root = paths.source_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


_PACKAGE_HASH: str | None = None


def code_version(notebook: str | None = None) -> str:
    """A hash of the code that produced a run: every source file of the package and, if given,
    the notebook (a path relative to the source checkout). Unlike the git commit it is exact
    for uncommitted changes, and the registry uses it to recognise a model already registered."""
    global _PACKAGE_HASH
    h = hashlib.sha256()
    if _PACKAGE_HASH is None:
        pkg = hashlib.sha256()
        root = paths.package_dir()
        for f in sorted(root.rglob("*.py")):
            pkg.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
        _PACKAGE_HASH = pkg.hexdigest()
    h.update(_PACKAGE_HASH.encode())
    if notebook:
        nb = paths.source_root() / notebook
        if nb.is_file():
            h.update(nb.read_bytes())
    return h.hexdigest()[:16]


def now() -> float:
    """The time to pass as ``start_run(started=...)``: take it before the fitting a run describes."""
    import time

    return time.time()


@contextlib.contextmanager
def start_run(
    experiment: str,
    *,
    run_name: str | None = None,
    params: Mapping | None = None,
    tags: Mapping | None = None,
    notebook: str | None = None,
    started: float | None = None,
) -> Iterator:
    """Start an MLflow run in ``experiment`` that records params, git commit and notebook.

    ``notebook`` defaults to ``URM_NOTEBOOK``, which the refresh sets for each notebook it runs.
    ``started`` (seconds since the epoch, :func:`now`) back-dates the run's start to when the
    fitting it describes began, so that its duration in the MLflow UI is the fitting's and not
    only the logging's.
    """
    import mlflow

    exp_id = ensure_experiment(EXPERIMENTS.get(experiment, experiment))
    nb = notebook or os.environ.get("URM_NOTEBOOK", "")
    commit = git_commit()
    all_tags = {
        "git_commit": commit,
        "mlflow.source.git.commit": commit.removesuffix("-dirty"),
        "code_version": code_version(nb or None),
    }
    if nb:
        all_tags.update({"notebook": nb, "mlflow.source.name": nb, "mlflow.source.type": "NOTEBOOK"})
    if os.environ.get("URM_REFRESH_ID"):
        all_tags["refresh_id"] = os.environ["URM_REFRESH_ID"]
    if os.environ.get("URM_SOURCE_FINGERPRINT"):
        all_tags["source_fingerprint"] = os.environ["URM_SOURCE_FINGERPRINT"]
    all_tags.update({k: str(v) for k, v in (tags or {}).items()})
    run_id = None
    if started is not None:
        configure()
        run_id = (
            mlflow.MlflowClient()
            .create_run(exp_id, start_time=int(started * 1000), tags=all_tags, run_name=run_name)
            .info.run_id
        )
    with mlflow.start_run(
        run_id=run_id,
        experiment_id=None if run_id else exp_id,
        run_name=None if run_id else run_name,
        tags=None if run_id else all_tags,
    ) as run:
        if params:
            mlflow.log_params({k: ("" if v is None else v) for k, v in params.items()})
        yield run


#: schemas of the tables logged by this process, by fingerprint: 05 logs the same RFM table in each of its runs
_SCHEMAS: dict[str, object] = {}


def dataset_schema(df: pd.DataFrame):
    """The ``mlflow.types.Schema`` MLflow's ``from_pandas`` infers for ``df``, column by column,
    without its loop over every value where the column's dtype already says the answer: a
    numeric, boolean or datetime column's type is its dtype's, and it is required when it holds
    no missing value; a column of Python strings without a missing one is a required string. Any
    other column (mixed objects, categories, extension types) is left to MLflow's own inference.
    MLflow's loop took 2.2 of 07's CPU-seconds on Hillstrom's 64,000 users; the result is the
    same (``tests/test_tracking.py`` compares the two on every shipped table)."""
    try:
        return _column_schema(df)
    except Exception:  # as MLflow's own: a table whose schema cannot be inferred is logged without one
        return None


def _column_schema(df: pd.DataFrame):
    import numpy as np
    from mlflow.types.schema import ColSpec, Schema
    from mlflow.types.utils import _infer_numpy_dtype, _infer_pandas_column, _infer_required

    specs = []
    for name in df.columns:
        col = df[name]
        dtype = col.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iub":
            kind, required = _infer_numpy_dtype(dtype), True
        elif isinstance(dtype, np.dtype) and (dtype == np.float64 or dtype.kind == "M"):
            kind, required = _infer_numpy_dtype(dtype), not bool(col.isna().any())
        elif (
            isinstance(dtype, np.dtype)
            and dtype.kind == "O"
            and len(col)
            and pd.api.types.infer_dtype(col, skipna=False) == "string"
        ):
            kind, required = _infer_pandas_column(col.iloc[:1]), True
        else:
            kind, required = _infer_pandas_column(col), _infer_required(col)
        specs.append(ColSpec(type=kind, name=name, required=required))
    return Schema(specs)


def log_dataset(
    df: pd.DataFrame,
    *,
    name: str,
    source: str | Path | None = None,
    context: str = "training",
    targets: str | None = None,
) -> str:
    """Log ``df`` as an ``mlflow.data`` input of the active run; return its fingerprint."""
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource

    digest = fingerprint(df)
    # the table is what the notebook's code made from ``source``: one explicit source type (a
    # plain string would be matched against several registered source types, and MLflow warns)
    origin = CodeDatasetSource(tags={"source": str(source or ""), "notebook": os.environ.get("URM_NOTEBOOK", "")})
    ds = mlflow.data.from_pandas(df, source=origin, name=name, digest=digest, targets=targets)
    key = f"{digest} {list(df.dtypes.astype(str))}"
    if key not in _SCHEMAS:
        _SCHEMAS[key] = dataset_schema(df)
    ds.__dict__["schema"] = _SCHEMAS[key]  # PandasDataset.schema is a cached property: its value, ready
    with _integer_columns_hint_silenced():
        mlflow.log_input(ds, context=context)
    mlflow.set_tag(f"data_fingerprint.{name}", digest)
    return digest


def log_metrics(metrics: Mapping[str, float]) -> None:
    import math

    import mlflow

    clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
    mlflow.log_metrics(clean)


def log_figures(figures: Mapping[str, object]) -> None:
    import mlflow

    for name, fig in figures.items():
        mlflow.log_figure(fig, f"figures/{name}.png")


def log_table(df: pd.DataFrame, name: str) -> None:
    """Log a DataFrame as a CSV artifact under ``tables/``."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{name}.csv"
        masked(df).to_csv(p)  # a user_id column or index is shown as pseudonyms
        mlflow.log_artifact(str(p), artifact_path="tables")


def _example(X: pd.DataFrame) -> pd.DataFrame:
    """Five rows as the model's input example: no index (user ids are not model inputs), and a
    ``user_id`` column, if a model takes one, pseudonymised."""
    return masked(X.head(5).reset_index(drop=True))


@contextlib.contextmanager
def _integer_columns_hint_silenced():
    """MLflow's schema inference hints that an integer column could not hold a missing value at
    scoring time; ours cannot have one (validation rejects missing values in them), and
    declaring them double instead would misstate counts and make MLflow refuse int64 input to
    a model ("can not safely convert int64 to float64") from every caller. Only that hint is
    silenced, only around MLflow's inference."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        yield


def _infer_signature(example: pd.DataFrame, output):
    """``mlflow.models.infer_signature`` without its hint about integer columns."""
    from mlflow.models import infer_signature

    with _integer_columns_hint_silenced():
        return infer_signature(example, output)


def _pip_requirements() -> list[str]:
    """Pinned runtime requirements of a logged model (inference by MLflow is slow and
    cannot see our local package; the package itself travels as code_paths)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in (
        "pandas",
        "numpy",
        "scipy",
        "scikit-learn",
        "xgboost-cpu",
        "lifelines",
        "duckdb",
        "pyarrow",
        "pandera",
        "sqlglot",
        "threadpoolctl",
        "cloudpickle",
    ):
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return reqs


def _code_paths() -> list[str]:
    return [str(paths.package_dir())]


def _log_pyfunc(wrapper, example: pd.DataFrame, name: str, registered_model_name: str | None = None):
    """Log an mlflow PythonModel with the signature its ``predict`` gives on ``example`` and the
    example itself; the urm_models package travels with it."""
    import mlflow

    return mlflow.pyfunc.log_model(
        name=name,
        python_model=wrapper,
        signature=_infer_signature(example, wrapper.predict(None, example)),
        input_example=example,
        pip_requirements=_pip_requirements(),
        code_paths=_code_paths(),
        registered_model_name=registered_model_name,
    )


def log_sklearn_model(model, X_example: pd.DataFrame, name: str = "model", registered_model_name: str | None = None):
    """Log a fitted scikit-learn estimator whose pyfunc ``predict`` returns ``predict_proba``,
    with a signature and an input example; the urm_models package travels with it."""
    import mlflow

    example = _example(X_example)
    signature = _infer_signature(example, model.predict_proba(example))
    # skops (MLflow's default format) refuses classes of ours such as the XGBoost wrapper
    return mlflow.sklearn.log_model(
        model,
        name=name,
        signature=signature,
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        serialization_format="cloudpickle",
        pip_requirements=_pip_requirements(),
        code_paths=_code_paths(),
        registered_model_name=registered_model_name,
    )


def log_survival_model(
    model,
    X_example: pd.DataFrame,
    horizon: float = 12.0,
    name: str = "model",
    registered_model_name: str | None = None,
    **clv,
):
    """Log a fitted SurvivalModel as a pyfunc returning, per row, ``p_churn`` within
    ``horizon`` periods and ``expected_remaining_lifetime`` (both given the current duration),
    and the contractual ``clv`` when ``charge_col`` (and optionally ``clv_horizon``,
    ``discount_rate``, ``margin``) are given."""
    # lazy: mlflow.pyfunc costs ~1.0 s to import; only logging a model needs it
    from .mlflow_models import SurvivalPyfunc

    return _log_pyfunc(SurvivalPyfunc(model, horizon, **clv), _example(X_example), name, registered_model_name)


def log_clv_model(scorer, rfm_example: pd.DataFrame, name: str = "model"):
    """Log a :class:`~urm_models.models.CLVScorer` as a pyfunc that takes an RFM table
    (``frequency, recency, T, monetary``; with a shifted-window purchase model also the
    activity features it reads, ``scorer.inputs``, so ``rfm_example`` must hold them) and returns
    expected purchases, P(alive), P(churn), expected remaining lifetime and CLV."""
    # lazy: mlflow.pyfunc costs ~1.0 s to import; only logging a model needs it
    from .mlflow_models import CLVPyfunc

    missing = [c for c in scorer.inputs if c not in rfm_example.columns]
    if missing:
        raise ValueError(
            f"the example lacks {missing}: the CLV model reads {scorer.inputs} (features.activity_features gives them)"
        )
    return _log_pyfunc(CLVPyfunc(scorer), rfm_example[scorer.inputs].head(5).reset_index(drop=True), name)


def log_uplift_model(policy, X_example: pd.DataFrame, name: str = "model"):
    """Log an :class:`~urm_models.experiments.policy.UpliftPolicy` as a pyfunc that takes users'
    pre-campaign features and returns the effects, incremental values per arm, the
    recommended arm and its expected incremental value."""
    # lazy: mlflow.pyfunc costs ~1.0 s to import; only logging a model needs it
    from .mlflow_models import UpliftPyfunc

    return _log_pyfunc(UpliftPyfunc(policy), _example(X_example[policy.features]), name)


# ------------------------------------------------------------------------------ registry
#: Registered model per family, with the holdout metric that decides promotion.
REGISTERED_MODELS = {
    "churn": ("urm-churn", "roc_auc", "higher"),
    "survival": ("urm-survival", "holdout_concordance", "higher"),
    "clv": ("urm-clv", "holdout_rmse", "lower"),
    # the held-out Qini coefficient of the modelled outcome, averaged over the treatment arms
    "uplift": ("urm-uplift", "holdout_qini", "higher"),
}
CHAMPION, CHALLENGER = "champion", "challenger"


def champion_alias(dataset: str) -> str:
    """The alias of a data set's champion, ``champion-<key>`` (:func:`urm_models.core.paths.dataset_key`:
    the name itself when plain, ``champion-cdnow``; no two data sets share one). Metrics are
    comparable only within one data set, so each has its own champion; ``champion`` itself names
    the most recently promoted one (what ``models:/<name>@champion`` and ``models/`` serve)."""
    return f"{CHAMPION}-{paths.dataset_key(dataset)}"


def _legacy_alias(dataset: str) -> str:
    """The alias of registries before 2026-12-07 (``shop.a`` and ``shop_a`` shared it): read only
    when its version's ``dataset`` tag names the data set."""
    return f"{CHAMPION}-{re.sub(r'[^A-Za-z0-9_-]', '_', dataset)}"


#: Run parameters that define what a metric was measured on (beside the data): a metric of
#: another cut-off, holdout, time unit, outcome or protocol is not comparable.
EVALUATION_PARAMS = ("cutoff", "holdout_end", "freq", "evaluation", "outcome", "value_outcome", "campaign_window")


def evaluation_context(run_id: str) -> str:
    """What a run's metric was measured on: its data (the refresh's validated input, else the
    tables it logged) and :data:`EVALUATION_PARAMS`; a short hash. The promotion rule compares
    metrics only between versions of the same context."""
    import mlflow

    run = mlflow.MlflowClient().get_run(run_id)
    tags = run.data.tags
    data = (
        {"source": tags["source_fingerprint"]}
        if tags.get("source_fingerprint")
        else {k: v for k, v in tags.items() if k.startswith("data_fingerprint.")}
    )
    params = {k: v for k, v in run.data.params.items() if k in EVALUATION_PARAMS}
    return hashlib.sha256(json.dumps({"data": data, "params": params}, sort_keys=True).encode()).hexdigest()[:16]


#: Run parameters that differ between runs of the same model on the same data (a snapshot path
#: named after the run, the staging path): left out of a model's identity.
VOLATILE_PARAMS = ("path", "output")


def model_identity(run_id: str, family: str, dataset: str) -> str:
    """What makes two logged models the same: the family, the data set, the run's parameters
    (but :data:`VOLATILE_PARAMS`), the data and its code version. The data is the refresh's
    validated input (tag ``source_fingerprint``) when the run comes from a refresh, else the
    fingerprints of the tables the run logged."""
    import mlflow

    run = mlflow.MlflowClient().get_run(run_id)
    tags = run.data.tags
    data = (
        {"source": tags["source_fingerprint"]}
        if tags.get("source_fingerprint")
        else {k: v for k, v in tags.items() if k.startswith("data_fingerprint.")}
    )
    blob = json.dumps(
        {
            "family": family,
            "dataset": dataset,
            "params": {k: v for k, v in run.data.params.items() if k not in VOLATILE_PARAMS},
            "data": data,
            "code": tags.get("code_version", ""),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _source_run(model_uri: str) -> str:
    import mlflow

    if model_uri.startswith("runs:/"):
        return model_uri.removeprefix("runs:/").split("/")[0]
    if model_uri.startswith("models:/m-"):
        return mlflow.get_logged_model(model_uri.removeprefix("models:/").split("/")[0]).source_run_id
    raise ValueError(f"cannot tell which run logged {model_uri!r}: give a runs:/ or models:/m-... URI")


def _version_by_alias(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register_model(
    model_uri: str, family: str, *, metric_value: float, dataset: str, tags: Mapping | None = None
) -> dict:
    """Register ``model_uri`` as a new version of the family's model and apply the promotion
    rule within its data set: it becomes the data set's champion (alias
    :func:`champion_alias`, and ``champion``) if the data set has none yet or if it beats that
    champion's metric strictly; otherwise it gets the ``challenger`` alias. Every version is
    tagged with ``dataset``, the metric, its ``role``, its ``identity``
    (:func:`model_identity`) and ``tags``.

    A model identical to a registered version (same identity: a repeated or killed-and-rerun
    refresh) is not registered again: that version gets the promotion rule instead, so a
    refresh run twice leaves one version per model. Returns what was decided and why
    (``registered``: whether a new version was created)."""
    import math

    import mlflow
    from mlflow.exceptions import MlflowException

    if family not in REGISTERED_MODELS:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(REGISTERED_MODELS)}")
    name, metric, direction = REGISTERED_MODELS[family]
    value = float(metric_value)
    if not math.isfinite(value):
        raise ValueError(f"{metric} of the new {name} version is {value}: cannot rank it")
    configure()
    client = mlflow.MlflowClient()
    source_run = _source_run(model_uri)
    if metric not in client.get_run(source_run).data.metrics:
        # the metric the family is ranked by, under the same name in every run the UI compares
        client.log_metric(source_run, metric, value)
    identity = model_identity(source_run, family, dataset)
    context = evaluation_context(source_run)
    refresh = os.environ.get("URM_REFRESH_ID", "")
    try:
        same = [mv for mv in client.search_model_versions(f"name='{name}'") if mv.tags.get("identity") == identity]
    except MlflowException:
        same = []
    if same:
        version = str(max(int(mv.version) for mv in same))
        registered = False
    else:
        import contextlib as _ctx
        import io as _io

        # mlflow.register_model prints "Successfully registered model ..." and "Created version ..."
        # to stderr itself (eprint, not its logger): our log line below says what was decided
        with _ctx.redirect_stderr(_io.StringIO()):
            mv = mlflow.register_model(model_uri, name)
        version = str(mv.version)
        registered = True
        for key, val in {
            "dataset": dataset,
            "metric": metric,
            metric: repr(value),
            "git_commit": git_commit(),
            "identity": identity,
            "context": context,
            **({"registered_by": refresh} if refresh else {}),
            **{k: str(v) for k, v in (tags or {}).items()},
        }.items():
            client.set_model_version_tag(name, version, key, val)
    champ = _champion_version(client, name, dataset)
    out = {"name": name, "version": version, "registered": registered, "metric": metric, "value": value}
    if champ is not None and str(champ.version) == version:
        promote, reason = True, f"identical to champion v{version} (same data, parameters and code)"
    elif champ is None:
        promote, reason = True, f"no champion for {dataset!r} yet"
    elif champ.tags.get("context") != context:
        promote = True
        reason = (
            f"{dataset!r} champion v{champ.version} was measured on other data or another cut-off, holdout or "
            f"protocol: its {metric} is not comparable; this refresh's choice replaces it"
        )
    else:
        old = float(champ.tags.get(metric, "nan"))
        better = value > old if direction == "higher" else value < old
        promote = bool(better) or not math.isfinite(old)
        reason = f"{metric} {value:.6g} vs {dataset!r} champion v{champ.version} {old:.6g} ({direction} is better)"
        if not registered:
            reason += f"; identical to v{version}, not registered again"
    role = CHAMPION if promote else CHALLENGER
    out.update(role=role, reason=reason)
    if refresh:
        # a refresh promotes when it succeeds (settle_refresh): a failed or killed one leaves the
        # aliases as they were and its new versions are removed
        client.set_model_version_tag(name, version, "pending_refresh", refresh)
        client.set_model_version_tag(name, version, "pending_role", role)
        client.set_model_version_tag(name, version, "pending_reason", reason)
        log.info("%s v%s: %s when refresh %s succeeds (%s)", name, version, role, refresh, reason)
        return {**out, "pending": refresh}
    _promote(client, name, version, dataset, role, champ)
    log.info("%s v%s: %s (%s)", name, version, role, reason)
    return out


def _champion_version(client, name: str, dataset: str):
    """The data set's champion version (None without one), also from registries of before."""
    champ = _version_by_alias(client, name, champion_alias(dataset))
    for alias in (_legacy_alias(dataset), CHAMPION):  # registries from before
        if champ is None:
            old = _version_by_alias(client, name, alias)
            champ = old if old is not None and old.tags.get("dataset") == dataset else None
    return champ


def _promote(client, name: str, version: str, dataset: str, role: str, champ) -> None:
    """Move the aliases for a decision (``role`` of ``version``; ``champ``, the champion before)."""
    if role == CHAMPION:
        client.set_registered_model_alias(name, champion_alias(dataset), version)
        client.set_registered_model_alias(name, CHAMPION, version)
        client.set_model_version_tag(name, version, "role", CHAMPION)
        if champ is not None and str(champ.version) != version:
            client.set_model_version_tag(name, str(champ.version), "role", "retired champion")
    else:
        client.set_registered_model_alias(name, CHALLENGER, version)
        client.set_model_version_tag(name, version, "role", CHALLENGER)


def _pending(client, name: str, refresh: str) -> list:
    from mlflow.exceptions import MlflowException

    try:
        return client.search_model_versions(f"name='{name}' AND tags.pending_refresh='{refresh}'")
    except MlflowException:  # no such registered model yet
        return []


def settle_refresh(refresh: str, ok: bool) -> list[dict]:
    """End a refresh's registrations. ``ok``: its decisions take effect (the aliases move, as
    :func:`register_model` decided); else its new versions are deleted and the versions it
    reused keep their roles: a failed or killed refresh leaves the registry as it found it.
    Returns what was done, one entry per version."""
    import mlflow

    configure()
    client = mlflow.MlflowClient()
    done = []
    for name, _, _ in REGISTERED_MODELS.values():
        for mv in _pending(client, name, refresh):
            version, tags = str(mv.version), mv.tags
            if ok:
                dataset = tags.get("dataset", "")
                _promote(
                    client, name, version, dataset, tags.get("pending_role"), _champion_version(client, name, dataset)
                )
                done.append({"name": name, "version": version, "role": tags.get("pending_role")})
            elif tags.get("registered_by") == refresh:
                client.delete_model_version(name, version)
                done.append({"name": name, "version": version, "role": "deleted: its refresh did not finish"})
                continue
            for key in ("pending_refresh", "pending_role", "pending_reason"):
                client.delete_model_version_tag(name, version, key)
    return done


def store_label(uri: str | None = None) -> str:
    """The tracking store as it may be shown and recorded: the URI without a password."""
    return settings.redact(uri or tracking_uri())


def champions_by_dataset(family_or_name: str) -> dict:
    """``{data set: version}`` of every data set's champion of a family in the store."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name = REGISTERED_MODELS.get(family_or_name, (family_or_name,))[0]
    configure()
    client = mlflow.MlflowClient()
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return {}
    prefix = f"{CHAMPION}-"
    out = {}
    for alias, version in (model.aliases or {}).items():
        if alias.startswith(prefix):
            mv = client.get_model_version(name, version)
            out[mv.tags.get("dataset", alias.removeprefix(prefix))] = str(version)
    return dict(sorted(out.items()))


def champion(family_or_name: str, dataset: str | None = None) -> dict:
    """The champion version of a family (``"clv"``) or registered name (``"urm-clv"``):
    ``name, version, uri, dataset, run_id, tags``; with ``dataset``, that data set's champion
    and no other: a data set without one is a LookupError that names the data sets that have
    one (score with another data set's model by naming it: ``scoring.score_users(...,
    models_from=...)``, ``urm score --models-from``)."""
    import mlflow

    name = REGISTERED_MODELS.get(family_or_name, (family_or_name,))[0]
    configure()
    client = mlflow.MlflowClient()
    mv, alias = None, CHAMPION
    refresh = os.environ.get("URM_REFRESH_ID", "")
    if dataset is not None and refresh:  # inside a refresh: its own decision, not yet promoted
        mine = [
            v
            for v in _pending(client, name, refresh)
            if v.tags.get("dataset") == dataset and v.tags.get("pending_role") == CHAMPION
        ]
        if mine:
            mv = max(mine, key=lambda v: int(v.version))
            alias = None
    if dataset is not None and mv is None:
        alias = champion_alias(dataset)
        mv = _version_by_alias(client, name, alias)
        if mv is not None and mv.tags.get("dataset") != dataset:
            raise LookupError(
                f"{name}@{alias} v{mv.version} was trained on {mv.tags.get('dataset')!r}, not {dataset!r}"
            )
        for old in (_legacy_alias(dataset), CHAMPION):  # registries from before
            if mv is None:
                found = _version_by_alias(client, name, old)
                if found is not None and found.tags.get("dataset") == dataset:
                    mv, alias = found, old
    elif dataset is None:
        mv = _version_by_alias(client, name, CHAMPION)
    if mv is None:
        what = f" for data set {dataset!r}" if dataset else ""
        run = f"urm refresh --dataset {dataset}" if dataset else "urm refresh"
        others = champions_by_dataset(name) if dataset else {}
        hint = (
            f"; champions exist for {', '.join(f'{d!r} (v{v})' for d, v in others.items())}: to score with one "
            f"of them, name it (urm score --models-from DATASET)"
            if others
            else ""
        )
        raise LookupError(
            f"no '{CHAMPION}' version of {name}{what} in {store_label()}{hint}; or run the "
            f"notebook that fits it ({run}) first"
        )
    return {
        "name": name,
        "version": str(mv.version),
        "uri": f"models:/{name}@{alias}" if alias else f"models:/{name}/{mv.version}",
        "dataset": mv.tags.get("dataset"),
        "run_id": mv.run_id,
        "tags": dict(mv.tags),
        "store": store_label(),
    }


def load_champion(family_or_name: str, dataset: str | None = None):
    """``(pyfunc model, champion info)`` for the champion (of ``dataset``), loaded by version so
    that the info matches the model even if the alias moves meanwhile."""
    info = champion(family_or_name, dataset)
    return load_version(info), info


def load_version(info: dict):
    """The pyfunc model of the version ``info`` names (from :func:`champion`)."""
    import mlflow

    return mlflow.pyfunc.load_model(f"models:/{info['name']}/{info['version']}")


def ui_command(host: str = "127.0.0.1", port: int = 5000) -> tuple[list[str], dict]:
    """``(argv, env)`` that start the MLflow UI on the project's store: one web worker and no
    background job runners (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``): by default MLflow 3.17
    starts 4 workers and 8 job workers on a SQLite store, 30+ s to come up on a small machine.
    A team server (http) serves its own UI: a ValueError says where (``urm ui`` prints it)."""
    import shutil
    import sys

    uri = tracking_uri()
    if is_server(uri):
        raise RemoteStore(
            f"the tracking store is the MLflow server {store_label(uri)}: it serves its own UI, "
            f"open {store_label(uri).rstrip('/')}/#/experiments{UI_LINK_QUERY} in a browser (nothing "
            f"is started here)"
        )
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    exe = str(mlflow_bin) if mlflow_bin.exists() else (shutil.which("mlflow") or "mlflow")
    argv = [exe, "ui", "--host", host, "--port", str(int(port)), "--workers", "1"]
    root = artifact_root()
    if root is not None:
        argv += ["--default-artifact-root", root]
    # the store through the environment, not the command line: any account on the machine can
    # read a process's arguments (ps), and a team store's URI may hold a password
    return argv, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_BACKEND_STORE_URI": uri}


def export_champion(family_or_name: str, dest: Path | None = None) -> Path:
    """Copy the champion's MLflow model to ``models/<name>/`` (or ``dest``), so that a consumer
    can ``mlflow.pyfunc.load_model`` it without the tracking store. The folder is replaced in
    one rename; a ``champion.json`` beside MLmodel says which version it is, and an export of
    the same version is not copied again."""
    import json
    import shutil
    import tempfile

    import mlflow

    info = champion(family_or_name)
    dest = Path(dest) if dest else paths.models_dir() / info["name"]
    try:
        if json.loads((dest / "champion.json").read_text(encoding="utf-8")) == scrub_obj(info):
            return dest  # every refresh asks; the artifacts only change with the champion
    except (OSError, ValueError):
        pass

    make_dirs(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(dir_mode())  # the output policy (io.py): owner-only unless URM_OUTPUT_ACCESS=group
    try:
        with settings.environ({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):  # even if the user turned it on
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{info['name']}/{info['version']}", dst_path=str(tmp)
            )
        (tmp / "champion.json").write_text(json.dumps(scrub_obj(info), indent=2), encoding="utf-8")
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
