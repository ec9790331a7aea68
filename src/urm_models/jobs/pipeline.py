"""The refresh: execute the parameterised notebooks in order with papermill, in one kernel
(docs/architecture.md, "The refresh").

Each executed notebook is kept under ``reports/runs/<run-id>/`` with a ``manifest.json``
(parameters, git commit, per-notebook status and duration, model versions, row counts), written
when the run starts (``status: "running"``) and again when it ends. A failing cell stops the
refresh, keeps the failed notebook and raises :class:`RefreshError` naming the notebook and the
cell. ``06_score_users`` stages the predictions table in the run folder; only when every
notebook succeeded is it published to ``data/predictions/<dataset>/<as_of>/user_scores.parquet``
(atomic rename, then the ``latest`` link), so a failed refresh leaves the previous predictions
untouched. Re-running the same as-of date replaces that date's table with an identical one: the
refresh is idempotent and safe to schedule. A lock file makes a second concurrent refresh (or
``urm score``, ``urm forget``, ``urm prune``) refuse instead of racing the first.

A refresh that was killed leaves a run folder whose manifest says ``running``; the next one
(holding the lock, so nothing else runs) marks it ``killed``, sets the MLflow runs it left
``RUNNING`` to ``FAILED``, removes its snapshot and the temporary files of interrupted atomic
writes (:func:`recover`). Own-data runs validate the file once into a snapshot under
``data/snapshots/<run-id>/`` (raw rows stay under ``data/``), deleted when the run ends unless
``keep_snapshot``. Outputs follow one file-mode policy (:mod:`urm_models.core.io`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ..core import clock, paths
from ..core.errors import DataValidationError, PublishError, RefreshError
from ..core.io import make_dirs, output_umask, restrict, write_parquet, write_text
from ..core.locks import check_database, refresh_lock
from ..core.redaction import scrub, scrub_file, scrub_obj
from ..core.settings import database_url, environ
from ..core.settings import summary as team_settings
from ..core.units import FREQ
from ..features.calendar import SeasonCalendar

# The command line imports this module to build its options (`urm --help`, `urm refresh` with
# bad arguments): the data sets, the MLflow store, scoring and the SQL table are imported in the
# functions that use them ("lazy:" marks them), which keeps ~0.7 s of imports (pandera, the
# data contract; python -X importtime) out of that.

log = logging.getLogger(__name__)

# jsonschema, which nbformat (so papermill) imports, compiles the 39 grammars of rfc3987-syntax
# when that package is installed (jupyterlab's jupyter-events pulls it in): 4 CPU-seconds in
# every refresh here, to offer an IRI format check that notebook validation never uses.
# Blocking that one import makes jsonschema leave the format out; nothing else changes.
sys.modules.setdefault("rfc3987_syntax", None)

KERNEL_NAME = "urm-models"
#: The refresh order, with the kinds of data set each notebook applies to (datasets.DATASETS).
#: 07 measures a campaign and registers the uplift model that 06's table takes its recommended
#: arms from, so it runs before 06.
NOTEBOOK_KINDS = {
    "01_explore_data": ("transactions", "customers"),
    "02_segment_users": ("transactions",),
    "03_model_churn": ("transactions", "customers"),
    "04_model_survival": ("customers",),
    "05_model_clv": ("transactions",),
    "07_measure_campaign": ("campaign",),
    "06_score_users": ("transactions", "customers", "campaign"),
}
SCORING_NOTEBOOK = "06_score_users"
CAMPAIGN_NOTEBOOK = "07_measure_campaign"
NOTEBOOKS = list(NOTEBOOK_KINDS)
DEFAULT_PARAMS = {
    "dataset": "cdnow",
    "cutoff": "1997-09-30",
    "holdout_end": "1998-06-30",
    "freq": FREQ,
    "seed": 0,
    "fast": False,
    "as_of": "",  # "" = the cut-off for transactions, today for customer tables
    "path": "",  # your own transactions file instead of a shipped data set ...
    "read": {},  # ... and how to read it (datasets.load_transactions' options)
    "keep_snapshot": False,  # keep data/snapshots/<run-id>/ (the validated input) after the run
    "campaign": "",  # your campaign's assignment file (user_id, arm, sent_at) on a transactions data set ...
    "control": "",  # ... its control arm ...
    "campaign_window": 4,  # ... the outcome window after each send (freq periods) ...
    "campaign_read": {},  # ... and how to read it (campaign_files.load_assignments' options)
    # the economics (urm_models.data.economics), None: the data set's defaults; one set for 03, 06, 07
    "contact_cost": None,  # per contact: a number or {arm: cost}, in the data set's currency
    "budget": None,  # money per campaign
    "budget_share": None,  # at most this share of the users per campaign
    "success_rate": None,  # ASSUMED share of contacted churners kept, where no campaign measured it
    "horizon_months": None,  # the window a retained user's value (CLV) counts over
    "persistent_control": None,  # share of users kept out of every campaign (a standing control group)
    # a season calendar for 05 (features.calendar): recurring ranges ["11-01..12-31"], dated ranges
    # ["2024-11-25..2024-12-02"], {name: [ranges]} or a file (period_start + columns); empty: none
    "season_calendar": [],
}
#: parameters of the refresh itself, not passed to notebooks
RUN_ONLY = ("keep_snapshot",)


def ensure_kernel() -> str:
    """Register the ``urm-models`` kernel (this environment's Python) inside the environment."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(
        kernel_name=KERNEL_NAME,
        display_name=f"urm-models (Python {sys.version_info.major}.{sys.version_info.minor})",
        prefix=sys.prefix,
    )
    return KERNEL_NAME


def notebook_parameters(path: Path) -> dict:
    """The names and defaults declared in a notebook's ``parameters`` cell."""
    import papermill as pm

    return {k: v.get("default") for k, v in pm.inspect_notebook(str(path)).items()}


def _kernel_config():
    """The kernel talks to papermill over Unix sockets in the user's Jupyter runtime folder,
    not over TCP on loopback where any local account can reach it (ipykernel warns about that
    on every start). The sockets get an absolute path of their own there: jupyter_client's
    default, ``kernel-ipc-<n>`` in the kernel's working folder, left five socket files in the
    project home (and would be shared by two kernels started there). A socket path has at most
    107 bytes on Linux: under a runtime folder too deep for ``urm-<12 hex>-ipc-<port>`` the
    kernel stays on TCP."""
    import uuid

    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets.config import Config

    runtime = Path(jupyter_runtime_dir())
    prefix = runtime / f"urm-{uuid.uuid4().hex[:12]}-ipc"
    if len(os.fsencode(f"{prefix}-65535")) > 107:
        return Config({"KernelManager": {"transport": "tcp"}})
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Config({"KernelManager": {"transport": "ipc", "ip": str(prefix)}})


#: The refresh's kernel computes on one thread unless these variables are set: its matrices are
#: tall and narrow (users x a few dozen features), where OpenBLAS's threads spin more than they
#: help. 03's logistic baseline on CDNOW took 15.5 CPU-seconds with OpenBLAS's two threads on this
#: 2-core machine and 2.9 on one, and less wall time too; the XGBoost models already ask for one
#: thread each (``n_jobs=1``). Set a variable in the environment to give the kernel more
#: threads (docs/benchmarks.md, "Threads").
KERNEL_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: papermill engine of the refresh: every notebook of a refresh runs in one kernel (see
#: :func:`shared_kernel`)
ENGINE = "urm-shared-kernel"

#: Run in the shared kernel, silently, before each notebook: the kernel then holds nothing of
#: the notebook before (names, figures, an open MLflow run), counts cells from 1 again, and
#: knows which notebook it runs (``URM_NOTEBOOK``, the tag of its MLflow runs). Imported
#: modules stay loaded: that is the point.
PRELUDE = """\
get_ipython().reset(new_session=True)  # also counts cells from 1 again, in a new history session
import gc as _gc, os as _os, sys as _sys
_os.environ["URM_NOTEBOOK"] = {notebook!r}
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
if "mlflow" in _sys.modules:
    while _sys.modules["mlflow"].active_run() is not None:
        _sys.modules["mlflow"].end_run("FAILED")
_gc.collect()
del _gc, _os, _sys
"""


def _register_engine() -> None:
    """Register :data:`ENGINE` with papermill: its nbclient engine, with a client that runs
    :data:`PRELUDE` first and releases its connection to the kernel (not the kernel) after."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args
    from traitlets import Unicode

    if ENGINE in papermill_engines._engines:
        return

    class SharedKernelClient(PapermillNotebookClient):
        prelude = Unicode("").tag(config=True)

        def papermill_execute_cells(self):
            if self.prelude:
                reply = self.wait_for_reply(self.kc.execute(self.prelude, silent=True, store_history=False))
                content = (reply or {}).get("content", {})
                if content.get("status") != "ok":
                    raise RefreshError(
                        f"could not prepare the kernel for the next notebook: "
                        f"{content.get('ename')}: {content.get('evalue')}"
                    )
            super().papermill_execute_cells()

        def execute(self, **kwargs):
            try:
                return super().execute(**kwargs)
            finally:
                if self.kc is not None:
                    self.kc.stop_channels()
                    self.kc = None

    class SharedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout or kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            return SharedKernelClient(nb_man, **final).execute()

    papermill_engines.register(ENGINE, SharedKernelEngine)


@contextlib.contextmanager
def shared_kernel() -> Iterator:
    """A kernel manager for the notebooks of one refresh: the kernel starts with the first
    notebook (in the project root, with the refresh's environment) and is shut down at the end.

    Each notebook started its own kernel before, and importing pandas, scikit-learn, MLflow and
    the rest cost each about 6 CPU-seconds on the project's 2-core machine: a third of ``make
    run`` (docs/benchmarks.md). :data:`PRELUDE` clears what a notebook leaves behind, and the
    notebooks still run alone (``urm lab``, the notebook tests) in kernels of their own."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name=ensure_kernel(), config=_kernel_config())
    try:
        yield km
    finally:
        if km.has_kernel:
            with contextlib.suppress(Exception):  # it may be dead already; nothing else to do
                run_sync(km.shutdown_kernel)(now=False)
        with contextlib.suppress(Exception):
            run_sync(km.cleanup_resources)()


def _process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` and its waited-for children (Linux /proc)."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def _kernel_pid(km) -> int | None:
    provisioner = getattr(km, "provisioner", None) if km is not None else None
    process = getattr(provisioner, "process", None)
    return getattr(process, "pid", None)


def run_notebook(
    name: str,
    params: Mapping,
    out_dir: Path,
    *,
    progress: bool = True,
    notebooks_dir: Path | None = None,
    km=None,
    on_cell=None,
) -> dict:
    """Execute one notebook; return its manifest entry. Raises RefreshError on a failing cell.

    With ``km`` (from :func:`shared_kernel`) it runs in that kernel, else in a kernel of its
    own; ``on_cell(name)`` is called after each executed cell (the refresh's progress bar)."""
    import resource

    import papermill as pm

    src = (notebooks_dir or paths.notebooks_dir()) / f"{name}.ipynb"
    if not src.is_file():
        raise RefreshError(f"notebook {src} not found")
    declared = notebook_parameters(src)
    passed = {k: v for k, v in params.items() if k in declared}
    out = out_dir / f"{name}.ipynb"
    t0 = time.perf_counter()
    own = resource.getrusage(resource.RUSAGE_SELF)
    kernel_cpu = _process_cpu_seconds(_kernel_pid(km))
    entry = {"notebook": name, "output": str(out), "parameters": passed}
    extra = {}
    if km is not None:
        _register_engine()
        extra = {"engine_name": ENGINE, "km": km, "prelude": PRELUDE.format(notebook=f"notebooks/{name}.ipynb")}
    if on_cell is not None:
        extra["on_cell_executed"] = lambda **_: on_cell(name)

    def finish(**more):
        mine = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (
            mine.ru_utime
            - own.ru_utime
            + mine.ru_stime
            - own.ru_stime
            + _process_cpu_seconds(_kernel_pid(km))
            - kernel_cpu
        )
        entry.update(seconds=round(time.perf_counter() - t0, 2), **more)
        if km is not None:  # a kernel of its own exits before it can be measured
            entry["cpu_seconds"] = round(cpu, 2)

    with environ({"URM_NOTEBOOK": f"notebooks/{name}.ipynb"}):
        try:
            pm.execute_notebook(
                str(src),
                str(out),
                parameters=passed,
                kernel_name=ensure_kernel(),
                progress_bar=progress,
                cwd=str(paths.project_root()),
                log_output=False,
                config=_kernel_config(),
                **extra,
            )
        except pm.PapermillExecutionError as exc:
            scrub_file(out)  # a traceback may quote a store's URI: no password stays in reports/
            exc.evalue = scrub(str(exc.evalue))
            finish(status="failed", error=f"{exc.ename}: {exc.evalue}")
            first_line = exc.source.strip().splitlines()[0] if exc.source.strip() else ""
            src_cell = _source_cell_index(out, exc.cell_index)
            entry["failed_cell"] = src_cell
            err = RefreshError(
                f"notebook {name}.ipynb failed in cell {src_cell} (counting from 0; execution "
                f"count {exc.exec_count}): {exc.ename}: {exc.evalue}\n  cell source: "
                f"{first_line} ...\n  the executed notebook is kept at {out}"
            )
            err.entry = entry
            raise err from exc
    scrub_file(out)
    finish(status="ok")
    return entry


def _source_cell_index(executed: Path, index: int) -> int:
    """Map a cell index of the executed copy back to the source notebook.

    papermill inserts an ``injected-parameters`` cell after the ``parameters`` cell.
    """
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return index
    for i, cell in enumerate(nb.cells):
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            return index - 1 if i < index else index
    return index


def refresh(
    params: Mapping | None = None,
    *,
    notebooks: Sequence[str] | None = None,
    run_id: str | None = None,
    progress: bool = True,
    notebooks_dir: Path | None = None,
) -> dict:
    """Run the notebooks in order; return the run manifest (also written to the run folder)."""
    # lazy: see the note at the top
    from ..serve import tracking

    given = dict(params or {})
    if "dataset" in given:
        _safe(given["dataset"], "data set name (--dataset)")
    if run_id is not None:  # refused before anything is read or written
        _safe(run_id, "run id (--run-id)")
    unknown = [n for n in (notebooks or []) if n not in NOTEBOOKS]
    if unknown:
        raise RefreshError(
            f"notebooks are named, not given as paths: unknown {unknown}; the refresh's notebooks are {NOTEBOOKS}"
        )
    # every argument, then the stores, before anything is read, locked, written or fitted
    p = check_parameters(dict(DEFAULT_PARAMS, **given), given)
    try:
        tracking.check_store()
        check_database()
    except RuntimeError as exc:
        raise RefreshError(str(exc)) from None
    with output_umask(), refresh_lock(dataset=p["dataset"]):
        # the lock first: a forget running now finishes before this refresh reads (and would
        # quarantine) the rows of the users it erases
        p, own = _own_data(p, given=given)
        names = list(notebooks or NOTEBOOKS)
        kind = _dataset_kind(p["dataset"], p["path"])
        # lazy: see the note at the top
        from ..data import datasets

        data = own if own is not None else datasets.load_dataset(p["dataset"])
        if kind == "transactions" and own is None:
            _check_dates(p, data, f"data set {p['dataset']}")
        _check_campaign(p, kind, data if kind == "transactions" else None)
        _check_economics(p)
        p["as_of"] = p.get("as_of") or clock.scoring_day(kind, p["cutoff"])
        run_id = run_id or f"{dt.datetime.now():%Y%m%dT%H%M%S}-{p['dataset']}"  # a safe data set name
        out_dir = paths.reports_dir() / "runs" / run_id
        staged = paths.staging_dir() / run_id / "user_scores.parquet"  # raw ids: under data/, not reports/

        manifest = {
            "run_id": run_id,
            "parameters": p,
            "git_commit": tracking.git_commit(),
            "pid": os.getpid(),
            "started": dt.datetime.now().isoformat(timespec="seconds"),
            "notebooks": [],
            "status": "running",
            "settings": team_settings(),
        }
        manifest["recovered"] = recover(run_id)
        manifest["data_fingerprint"] = _source_fingerprint(data)
        make_dirs(out_dir)
        make_dirs(staged.parent)
        mpath = out_dir / "manifest.json"
        write_manifest(manifest, mpath)
        p_run = {k: v for k, v in p.items() if k not in RUN_ONLY}  # what the notebooks get
        snapshot_dir = paths.snapshots_dir() / run_id
        if own is not None:
            # every notebook reads the rows validated once here: one quarantine file, and the
            # same data even if the source file changes meanwhile; raw rows stay under data/
            snapshot = snapshot_dir / "transactions.parquet"
            make_dirs(snapshot_dir)
            # without the validation report: it quotes rejected raw rows (they are in quarantine); an
            # activity log's placeholder amounts stay out too: the re-read sets them again
            kept = own if own.attrs.get("amounts", "file") == "file" else own.drop(columns="amount")
            write_parquet(kept.copy(deep=False).pipe(_without_attrs), snapshot, index=False)
            p_run.update(path=str(snapshot), read=_snapshot_read(p["read"]))
            manifest["data"] = {
                "source": p["path"],
                "snapshot": str(snapshot),
                "rows": len(own),
                "validation": _without_examples(own.attrs.get("validation")),
            }
            write_manifest(manifest, mpath)
        p_scoring = {**p_run, "output": str(staged)}
        t0 = time.perf_counter()
        name = names[0] if names else ""
        # the kernel inherits this environment: MLflow, which sets its own logger to INFO when
        # imported, keeps its notices about its tables and input examples out of the notebooks;
        # the kernel computes on one thread (KERNEL_THREADS)
        with environ(
            {
                "URM_REFRESH_ID": run_id,
                "URM_SOURCE_FINGERPRINT": manifest["data_fingerprint"],
                "MLFLOW_LOGGING_LEVEL": os.environ.get("MLFLOW_LOGGING_LEVEL", "WARNING"),
                **{k: os.environ.get(k, v) for k, v in KERNEL_THREADS.items()},
            }
        ):
            runnable = [
                n for n in names if kind in NOTEBOOK_KINDS.get(n, (kind,)) or (n == CAMPAIGN_NOTEBOOK and p["campaign"])
            ]
            bar = _progress(runnable, progress, notebooks_dir)
            try:
                with shared_kernel() as km:
                    for name in names:
                        if name not in runnable:
                            why = (
                                "no campaign given (--campaign)"
                                if name == CAMPAIGN_NOTEBOOK and kind == "transactions"
                                else f"not applicable to {kind} data"
                            )
                            manifest["notebooks"].append({"notebook": name, "status": "skipped", "reason": why})
                            continue
                        if bar is not None:
                            bar.set_description(name)
                        manifest["notebooks"].append(
                            run_notebook(
                                name,
                                p_scoring if name == SCORING_NOTEBOOK else p_run,
                                out_dir,
                                progress=False,
                                notebooks_dir=notebooks_dir,
                                km=km,
                                on_cell=(lambda _name: bar.update(1)) if bar is not None else None,
                            )
                        )
                if bar is not None:
                    bar.set_description("publishing and exporting the champions")
                if SCORING_NOTEBOOK in names:
                    manifest["predictions"] = publish(staged, p["dataset"], p["as_of"], run_id)
                # the refresh succeeded: its model decisions take effect now, not before
                manifest["registry"] = tracking.settle_refresh(run_id, ok=True)
                manifest["models"] = _champions(p["dataset"])
            except RefreshError as exc:
                manifest.update(status="failed", error=str(exc))
                if hasattr(exc, "predictions"):  # the Parquet table is out, made by this refresh's models
                    manifest["predictions"] = exc.predictions
                    manifest["registry"] = tracking.settle_refresh(run_id, ok=True)
                else:
                    manifest["notebooks"].append(getattr(exc, "entry", {"notebook": name, "status": "failed"}))
                raise
            finally:
                if bar is not None:
                    bar.close()
                manifest["seconds"] = round(time.perf_counter() - t0, 2)
                manifest["ended"] = dt.datetime.now().isoformat(timespec="seconds")
                if manifest["status"] == "running":
                    manifest["status"] = "ok" if len(manifest["notebooks"]) == len(names) else "failed"
                if manifest["status"] != "ok" and "registry" not in manifest:
                    # its new model versions go, and no alias moved: the registry is as it was
                    with contextlib.suppress(Exception):  # the store may be what failed
                        manifest["registry"] = tracking.settle_refresh(run_id, ok=False)
                # a table that was not published goes with its run (raw ids; the executed
                # notebooks under reports/ show what happened)
                shutil.rmtree(staged.parent, ignore_errors=True)
                if own is not None and not p["keep_snapshot"]:
                    shutil.rmtree(snapshot_dir, ignore_errors=True)
                    manifest["data"]["snapshot"] = None
                    manifest["data"]["snapshot_deleted"] = True
                write_manifest(manifest, mpath)
                restrict_outputs()
    log.debug("refresh %s finished in %.1fs; reports in %s", run_id, manifest["seconds"], out_dir)
    return manifest


def write_manifest(manifest: dict, path: Path) -> None:
    """A run's manifest, atomically, with every password masked (:mod:`urm_models.core.redaction`)."""
    write_text(json.dumps(scrub_obj(json.loads(json.dumps(manifest, default=str))), indent=2), path)


def _without_attrs(df):
    df.attrs = {}
    return df


def check_parameters(p: dict, given: Mapping) -> dict:
    """Every parameter of a refresh checked and given its type before anything is read or fitted:
    dates (``YYYY-MM-DD``, or a date YAML read unquoted), the time unit, the seed, the switches,
    the campaign window, the reading options. A bad one is a :class:`RefreshError` naming it."""
    out = dict(p)
    for key in ("cutoff", "holdout_end", "as_of"):
        if key == "as_of" and out.get(key) in ("", None):
            out[key] = ""
            continue
        out[key] = _date_text(out.get(key), key)
    if out["freq"] not in ("D", "W", "M"):
        raise RefreshError(f"freq {out['freq']!r} is not a time unit: D (days), W (weeks) or M (months)")
    seed = out["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        if isinstance(seed, str) and seed.strip().isdigit():
            seed = int(seed)
        else:
            raise RefreshError(f"seed {out['seed']!r} is not a whole number of 0 or more")
    out["seed"] = seed
    for key in ("fast", "keep_snapshot"):
        if not isinstance(out[key], bool):
            raise RefreshError(f"{key} {out[key]!r} is not true or false")
    window = out["campaign_window"]
    try:
        ok = not isinstance(window, bool) and math.isfinite(float(window)) and float(window) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise RefreshError(
            f"campaign_window {window!r} is not a positive number of {out['freq']} periods (the outcome "
            "window after each send)"
        )
    for key in ("path", "campaign", "control", "dataset"):
        if not isinstance(out[key], str):
            raise RefreshError(f"{key} {out[key]!r} must be text")
    for key in ("read", "campaign_read"):
        if not isinstance(out[key], Mapping):
            raise RefreshError(f"{key} must be a mapping of option: value, not {out[key]!r}")
    forbidden = sorted(set(out["read"]) & {"dataset", "quarantine_dir"})
    if forbidden:
        raise RefreshError(
            f"reading option(s) {forbidden} are the refresh's own: the data set is --dataset (it scopes "
            "erasures), and rejected rows always go to data/quarantine/ (raw rows stay under data/)"
        )
    if out.get("season_calendar") not in (None, "", [], {}):
        spec = out["season_calendar"]
        if isinstance(spec, str) and Path(spec).expanduser().is_file():  # the notebooks run elsewhere
            out["season_calendar"] = spec = str(Path(spec).expanduser().resolve())
        try:
            SeasonCalendar(spec)
        except ValueError as exc:
            raise RefreshError(f"season_calendar: {exc}") from None
    else:
        out["season_calendar"] = []
    if out["path"] and "dataset" not in given:
        # lazy: see the note at the top
        from ..data import datasets

        out["dataset"] = _safe(datasets.dataset_name(out["path"]), "data set name (from --path)")
    return out


def _date_text(value, name: str) -> str:
    """``YYYY-MM-DD`` of a parameter that is a date: the text itself, or a date YAML read."""
    import re

    if isinstance(value, (dt.date, dt.datetime)):
        return f"{value:%Y-%m-%d}"
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise RefreshError(f"{name} {value!r} is not a date (YYYY-MM-DD)")
    _day(value.strip(), name)
    return value.strip()


def _check_economics(p: dict) -> None:
    """The economics are read before any notebook runs: a bad cost or budget is named up front."""
    # lazy: see the note at the top
    from ..data.economics import economics

    keys = ("contact_cost", "budget", "budget_share", "success_rate", "horizon_months", "persistent_control")
    try:
        economics(p["dataset"], p["path"], **{k: p.get(k) for k in keys})
    except ValueError as exc:
        raise RefreshError(f"economics: {exc}") from None


def _source_fingerprint(data) -> str:
    """The fingerprint of the validated input of the run (after erasures): every MLflow run of
    the refresh is tagged with it, and the registry recognises a model already registered by
    it. Features computed from it can differ in the last bits between runs (DuckDB sums in
    parallel), so their own fingerprints cannot serve."""
    # lazy: see the note at the top
    from ..data import datasets

    return datasets.fingerprint(getattr(data, "data", data))  # a campaign: its table


def _check_dates(p: dict, tx, what: str) -> None:
    """The cut-off and the end of the holdout are dates, and the cut-off lies in the data, before
    the end of the holdout: checked before any notebook runs (not in the first one that reads them)."""
    ts = tx["ts"].dt.tz_localize(None) if tx["ts"].dt.tz is not None else tx["ts"]
    first, last = ts.min().normalize(), ts.max().normalize()
    cutoff = _day(p["cutoff"], "cutoff")
    holdout_end = _day(p["holdout_end"], "holdout_end")
    if not first <= cutoff < holdout_end:
        raise RefreshError(
            f"cut-off {cutoff:%Y-%m-%d} must lie on or after the first purchase and before the end "
            f"of the holdout ({holdout_end:%Y-%m-%d}): the purchases of {what} run from "
            f"{first:%Y-%m-%d} to {last:%Y-%m-%d} (--cutoff, --holdout-end)"
        )


def restrict_outputs() -> None:
    """Apply the file-mode policy to everything the project writes: what MLflow copies keeps
    its source's mode (the package's code travels with each model), the umask cannot cover it."""
    restrict(
        [
            paths.reports_dir(),
            paths.mlruns_dir(),
            paths.models_dir(),
            paths.predictions_dir(),
            paths.quarantine_dir(),
            paths.snapshots_dir(),
            paths.project_root() / "data" / "erasure",
            paths.project_root() / "data" / "tmp",
        ]
    )


def _safe(value, what: str) -> str:
    try:
        return paths.safe_name(value, what)
    except ValueError as exc:
        raise RefreshError(str(exc)) from None


def _without_examples(report: dict | None) -> dict | None:
    """A validation report without the example values (raw ids and amounts): what the
    manifest under reports/ may hold. The examples are in the quarantine file under data/."""
    if not report:
        return report
    return {**report, "failures": [{k: v for k, v in f.items() if k != "examples"} for f in report.get("failures", [])]}


# ------------------------------------------------------------------------------ crash leftovers


def recover(current: str | None = None) -> dict:
    """Clean up after refreshes that ended without finishing (``kill -9``, a crash, a reboot).

    Call it holding the refresh lock (nothing else is running then). Every run folder whose
    manifest is missing or says ``running`` (other than ``current``) gets a manifest with
    ``status: "killed"``; its snapshot is removed unless it asked to keep it; MLflow runs that a
    refresh left ``RUNNING`` become ``FAILED``; temporary files of interrupted atomic writes are
    removed. Returns what was done.
    """
    done = {"killed_runs": [], "failed_mlflow_runs": [], "removed_tmp": []}
    runs = paths.reports_dir() / "runs"
    now = dt.datetime.now().isoformat(timespec="seconds")
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        if not folder.is_dir() or folder.name == current:
            continue
        mpath = folder / "manifest.json"
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            manifest = {
                "run_id": folder.name,
                "status": "running",
                "notebooks": [],
                "note": "the run was stopped before it wrote its manifest",
            }
        except ValueError:
            manifest = {
                "run_id": folder.name,
                "status": "running",
                "notebooks": [],
                "note": "the manifest was unreadable",
            }
        if manifest.get("status") != "running":
            continue
        manifest.update(
            status="killed",
            detected=now,
            error=f"the refresh ended without finishing (killed or crashed); found by refresh {current or '(recover)'}",
        )
        if not (manifest.get("parameters") or {}).get("keep_snapshot"):
            shutil.rmtree(paths.snapshots_dir() / folder.name, ignore_errors=True)
        shutil.rmtree(paths.staging_dir() / folder.name, ignore_errors=True)
        # a run from before the staged table moved under data/ kept it here, with raw ids
        (folder / "user_scores.parquet").unlink(missing_ok=True)
        for executed in folder.glob("*.ipynb"):  # killed before its notebook was scrubbed
            scrub_file(executed)
        write_manifest(manifest, mpath)
        done["killed_runs"].append(folder.name)
    own_runs = {f.name for f in runs.iterdir() if f.is_dir()} - {current} if runs.is_dir() else set()
    done["failed_mlflow_runs"] = _fail_orphan_mlflow_runs(own_runs, current)
    # lazy: see the note at the top
    from ..serve import tracking

    for killed in done["killed_runs"]:  # its model versions go; no alias moved
        done.setdefault("registry", []).extend(tracking.settle_refresh(killed, ok=False))
    done["removed_tmp"] = _remove_tmp_files()
    if any(done.values()):
        log.info("recovered from earlier runs that did not finish: %s", done)
    return done


def _fail_orphan_mlflow_runs(own_runs: set[str], current: str | None = None) -> list[str]:
    """Set to FAILED the MLflow runs that this project home's earlier refreshes (``own_runs``,
    the run folders under its reports/runs/ but the current one) left RUNNING. Runs of other
    homes on a team's server are never touched: another member's refresh may be running."""
    # lazy: see the note at the top
    from ..serve import tracking

    if not own_runs:
        return []
    local = paths.mlruns_dir() / "mlflow.db"
    if tracking.tracking_uri() == tracking.default_tracking_uri():
        if not local.is_file():
            return []
        import sqlite3

        with contextlib.closing(sqlite3.connect(f"file:{local}?mode=ro", uri=True)) as con:
            try:
                rows = con.execute(
                    "SELECT r.run_uuid, t.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                    "WHERE r.status = 'RUNNING' AND t.key = 'refresh_id'"
                ).fetchall()
            except sqlite3.Error:
                return []
        ids = [run for run, refresh in rows if refresh in own_runs]
    else:
        import mlflow

        tracking.configure()
        found = mlflow.search_runs(
            search_all_experiments=True, output_format="list", filter_string="attributes.status = 'RUNNING'"
        )
        ids = [r.info.run_id for r in found if r.data.tags.get("refresh_id") in own_runs]
    if ids:
        import mlflow

        tracking.configure()
        client = mlflow.MlflowClient()
        for run_id in ids:
            client.set_tag(run_id, "urm.recovered_by", current or "recover")
            client.set_terminated(run_id, "FAILED")
    return ids


def _remove_tmp_files() -> list[str]:
    """Temporary files and folders of interrupted atomic writes (``.<name>.*.tmp``, the
    ``.latest.<pid>`` links, half-exported ``models/.<name>.*`` folders). Links are removed,
    never followed."""
    import fnmatch

    removed = []
    roots = [
        paths.predictions_dir(),
        paths.quarantine_dir(),
        paths.snapshots_dir(),
        paths.reports_dir() / "runs",
        paths.models_dir(),
    ]
    for root in roots:
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            for name in [*files, *dirs]:
                hit = here / name
                stale = (
                    fnmatch.fnmatch(name, ".*.tmp")
                    or fnmatch.fnmatch(name, ".latest.*")
                    or (here == paths.models_dir() and name.startswith(".") and hit.is_dir() and not hit.is_symlink())
                )
                if not stale:
                    continue
                if hit.is_dir() and not hit.is_symlink():
                    shutil.rmtree(hit, ignore_errors=True)
                    dirs[:] = [d for d in dirs if d != name]
                else:
                    hit.unlink(missing_ok=True)
                removed.append(str(hit))
    return removed


def prune(keep: int) -> dict:
    """Remove all but the newest ``keep`` run folders under ``reports/runs`` and their
    snapshots; never a run whose table a ``latest`` link points to. Holds the refresh lock."""
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, not {keep}")
    with output_umask(), refresh_lock():
        runs = paths.reports_dir() / "runs"
        folders = [f for f in runs.iterdir() if f.is_dir()] if runs.is_dir() else []

        def started(folder):
            try:
                return json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("started") or ""
            except (OSError, ValueError):
                return ""

        folders.sort(key=lambda f: (started(f), f.stat().st_mtime), reverse=True)
        protected = _published_runs()
        removed, kept_latest = [], []
        for folder in folders[keep:]:
            if folder.name in protected:
                kept_latest.append(folder.name)
                continue
            shutil.rmtree(folder)
            shutil.rmtree(paths.snapshots_dir() / folder.name, ignore_errors=True)
            removed.append(folder.name)
        snaps = paths.snapshots_dir()
        for orphan in snaps.iterdir() if snaps.is_dir() else []:
            if not (runs / orphan.name).exists():
                shutil.rmtree(orphan, ignore_errors=True)
                removed.append(f"snapshot {orphan.name}")
    return {"removed": removed, "kept": [f.name for f in folders[:keep]], "kept_for_latest": kept_latest}


def _published_runs() -> set[str]:
    """Run ids whose table a ``data/predictions/<dataset>/latest`` link points to."""
    import pyarrow.parquet as pq

    out = set()
    root = paths.predictions_dir()
    for latest in root.glob("*/latest") if root.is_dir() else []:
        try:
            meta = pq.read_schema(latest / "user_scores.parquet").metadata or {}
            run = json.loads(meta.get(b"urm_models", b"{}")).get("run_id")
        except (OSError, ValueError):
            continue
        if run:
            out.add(run)
    return out


def publish(staged: Path, dataset: str, as_of: str, run_id: str) -> dict:
    """Move the staged predictions table into ``data/predictions`` (atomically) and return
    what the manifest records about it."""
    import pandas as pd

    # lazy: see the note at the top
    from ..serve.scoring import write_predictions

    if not staged.is_file():
        raise RefreshError(f"{SCORING_NOTEBOOK}.ipynb finished but wrote no table at {staged}")
    # lazy: see the note at the top
    from ..serve.sqltable import publish_table

    try:
        table = pd.read_parquet(staged)
        path = write_predictions(table, dataset, as_of, metadata={"run_id": run_id})
    except (OSError, ValueError) as exc:
        raise RefreshError(f"publishing the predictions of {staged} failed: {exc}") from exc
    info = {
        "path": str(path),
        "sql": None,
        "latest": str(path.parent.parent / "latest"),
        "rows": len(table),
        "as_of": as_of,
        "model_versions": sorted(table["model_versions"].dropna().unique().tolist()),
        "p_churn_source": table.attrs.get("p_churn_source"),
        "churn_horizon": table.attrs.get("churn_horizon"),
        "tiers": table["tier"].value_counts().to_dict(),
        "lifecycle_stages": table["lifecycle_stage"].value_counts().to_dict(),
    }
    staged.unlink()
    plan = staged.with_name("next_campaign.parquet")  # 06's plan of the next campaign goes with its table
    if plan.is_file():
        os.replace(plan, path.parent / plan.name)
    if database_url():
        try:
            info["sql"] = publish_table(
                table,
                dataset,
                run_id=run_id,
                metadata={k: table.attrs.get(k) for k in ("models_trained_on", "model_store")},
            )
        except (PublishError, OSError, ValueError) as exc:
            info["sql"] = {"error": str(exc)}
            err = RefreshError(
                f"the table was published to {path} but not to the team database: {exc}. Publish it "
                f"there with `urm score --dataset {dataset} --as-of {as_of}` once the database takes it"
            )
            err.predictions = info
            raise err from None
    return info


def _champions(dataset: str) -> dict:
    """The data set's champion version of every registered family (those that exist); the
    latest champion of each family is exported to ``models/<name>/`` so that consumers can load
    it without the tracking store."""
    # lazy: see the note at the top
    from ..serve.tracking import REGISTERED_MODELS, champion, export_champion

    out = {}
    for family in REGISTERED_MODELS:
        try:
            info = champion(family, dataset)
        except LookupError:
            continue
        try:
            exported = str(export_champion(family))
        except Exception as exc:  # the predictions are published already; say so, don't fail
            log.warning("could not export %s v%s: %s", info["name"], info["version"], exc)
            exported = None
        out[info["name"]] = {
            "version": info["version"],
            "dataset": info["dataset"],
            "run_id": info["run_id"],
            "exported_to": exported,
        }
    return out


def _dataset_kind(name: str, path: str = "") -> str:
    # lazy: see the note at the top
    from ..data.datasets import dataset_kind

    try:
        return dataset_kind(name, path)
    except ValueError as exc:
        raise RefreshError(str(exc)) from None


# validation options that keep rows the default would reject, or say what a row's amount is: a
# snapshot is re-read with them
_KEEP_ROWS = ("duplicates", "returns", "value_per_event")


def _snapshot_read(read: Mapping) -> dict:
    """How the notebooks re-read the snapshot: its rows passed the loader's checks once, on the
    file, so no later check may be stricter. Exact copies are kept: rows the file told apart by a
    column the mapping leaves out (two invoices of one customer, minute and amount under
    different numbers) are copies in the snapshot, and the BTYD summary merges same-day
    purchases anyway (docs/architecture.md, "The data contract")."""
    return {**{k: v for k, v in read.items() if k in _KEEP_ROWS}, "duplicates": "keep"}


def _own_data(p: dict, given: Mapping):
    """Parameters for a refresh of your own transactions file (``path``): the data set is named
    after the file unless ``dataset`` is given; the file is read and validated before any
    notebook runs; ``cutoff`` must be given and lie inside the data; ``holdout_end`` defaults
    to the last purchase date, 02's ``previous`` to 13 weeks before the cut-off (``later``:
    none). Returns the parameters and the validated rows (None for a shipped data set)."""
    # lazy: see the note at the top
    from ..data import datasets
    from ..data.options import ReadOptions, option_names

    if not p["path"]:
        if p["read"]:
            raise RefreshError(f"reading options {sorted(p['read'])} need a path to your own file")
        return p, None
    # absolute, not resolved: a symbolic link must reach the reader, which refuses it
    path = Path(os.path.abspath(Path(p["path"]).expanduser()))
    known = set(option_names(ReadOptions)) - {"dataset", "quarantine_dir"}
    if not isinstance(p["read"], Mapping) or set(p["read"]) - known:
        bad = sorted(set(p["read"]) - known) if isinstance(p["read"], Mapping) else p["read"]
        raise RefreshError(f"unknown reading option(s) {bad} for {path}; known: {sorted(known)}")
    if "dataset" not in given:
        p["dataset"] = datasets.dataset_name(path)
    if p["dataset"] in datasets.DATASETS:
        raise RefreshError(f"{p['dataset']!r} is a shipped data set; name the data set in {path} otherwise (--dataset)")
    if not path.is_file():
        raise RefreshError(f"data file {path} not found")
    tx = datasets.load_dataset(p["dataset"], path, **p["read"])
    if tx.empty:
        raise RefreshError(f"{path} holds no valid transactions")
    ts = tx["ts"].dt.tz_localize(None) if tx["ts"].dt.tz is not None else tx["ts"]
    first, last = ts.min().normalize(), ts.max().normalize()
    span = f"the purchases in {path} run from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    if "cutoff" not in given:
        raise RefreshError(f"your own data needs a cut-off date (--cutoff): {span}")
    holdout_end = _day(given.get("holdout_end") or last, "holdout_end")
    cutoff = _day(p["cutoff"], "cutoff")
    if not first <= cutoff < holdout_end:
        raise RefreshError(
            f"cut-off {cutoff:%Y-%m-%d} must lie on or after the first purchase and "
            f"before the end of the holdout ({holdout_end:%Y-%m-%d}): {span}"
        )
    p.update(path=str(path), holdout_end=f"{holdout_end:%Y-%m-%d}")
    if "previous" not in given:
        p["previous"] = f"{cutoff - dt.timedelta(weeks=13):%Y-%m-%d}"
    if "later" not in given:
        p["later"] = ""
    return p, tx


def _check_campaign(p: dict, kind: str, tx=None) -> None:
    """A campaign's assignment file (``campaign``) goes with a transactions data set: read and
    validated here, before any notebook runs, so that a bad file stops the refresh with its
    message; its options without a file are a mistake, not ignored."""
    # lazy: see the note at the top
    from ..data import campaign_files

    options = {k: p[k] for k in ("control", "campaign_read") if p.get(k)}
    if not p.get("campaign"):
        if options:
            raise RefreshError(f"campaign option(s) {sorted(options)} need an assignment file (--campaign)")
        return
    if kind != "transactions":
        raise RefreshError(
            f"an assignment file (--campaign) goes with a transactions data set; {p['dataset']!r} is a {kind} data set"
        )
    if not p.get("control"):
        raise RefreshError(f"name the control arm of {p['campaign']} (--control)")
    path = Path(os.path.abspath(Path(p["campaign"]).expanduser()))
    if not path.is_file():
        raise RefreshError(f"assignment file {path} not found")
    read = p.get("campaign_read") or {}
    known = {"columns", "sep", "encoding", "date_format", "tz", "arms", "errors"}
    if not isinstance(read, Mapping) or set(read) - known:
        raise RefreshError(
            f"unknown campaign reading option(s) {sorted(set(read) - known) if isinstance(read, Mapping) else read}; "
            f"known: {sorted(known)}"
        )
    try:
        float(p["campaign_window"])
    except (TypeError, ValueError):
        raise RefreshError(f"campaign_window {p['campaign_window']!r} is not a number of {p['freq']} periods") from None

    try:
        if tx is None:
            campaign_files.load_assignments(path, control=p["control"], dataset=p["dataset"], **read)
        else:  # the whole campaign on its transactions (window, sends, ids), nothing fitted
            # lazy: the experiments and models packages cost ~0.7 s; only a refresh given a campaign needs them
            from ..experiments.campaign import check_campaign

            window, freq, control = p["campaign_window"], p["freq"], p["control"]
            check_campaign(tx, path, window=window, freq=freq, control=control, read=read, dataset=p["dataset"])
    except DataValidationError as exc:
        raise RefreshError(f"the assignment file is refused: {exc}") from None
    p["campaign"] = str(path)


def _day(value, name: str = "date"):
    import pandas as pd

    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError):
        raise RefreshError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


def _progress(names: list[str], enabled: bool, notebooks_dir: Path | None = None):
    """One bar for the refresh that advances with every executed cell, named after the notebook
    running, or None. Its total counts each notebook's code cells and papermill's parameter cell."""
    if not enabled:
        return None
    import nbformat
    from tqdm import tqdm

    folder = notebooks_dir or paths.notebooks_dir()
    total = 0
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
            total += 1 + sum(c.cell_type == "code" for c in nb.cells)
    return tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True)
