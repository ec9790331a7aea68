"""`make ui-check`: the MLflow UI on the project's store, seen by a real headless browser.

Starts `urm ui` on a free port, opens in Debian's Chromium (headless) the pages `urm ui` links to:
the churn experiment (it opens on its training runs, not on the GenAI "Overview"), the
experiment list (ours, no empty Default experiment), the registry (our models) and urm-clv's page
(its versions with their data set, metric and champion aliases); asserts on what they show and
saves screenshots under reports/ui-check/ (`--images docs/images`, what `make ui-check DOCS=1` passes,
replaces the ones docs/team.md shows). Needs a store with runs (`make run`). In a team's clone the store
is the team's MLflow server: its own UI is checked at its address (nothing is started), unless the
address holds a password (a browser would show it): then it says so and checks nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1440,900",
    "--virtual-time-budget=25000",
]


def browser(*args: str) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-headless-shell")
    if exe is None:
        sys.exit("ui-check: no Chromium (apt-get install chromium); `make ui-check` installs it")
    with tempfile.TemporaryDirectory(prefix="urm-chromium-") as profile:
        out = subprocess.run(
            [exe, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=180
        )
    return out.stdout


def main(argv: list[str] | None = None) -> int:
    import argparse

    import mlflow

    from urm_models.core import paths
    from urm_models.serve import tracking

    parser = argparse.ArgumentParser(prog="ui_check", description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="where the screenshots go (default: reports/ui-check/)")
    args = parser.parse_args(argv)
    images = Path(args.images) if args.images else paths.reports_dir() / "ui-check"
    uri = tracking.tracking_uri()
    server = tracking.is_server(uri)
    if server and tracking.store_label(uri) != uri:
        sys.exit(
            f"ui-check: the store is the team's MLflow server {tracking.store_label(uri)}, whose address holds a "
            "password: open its UI in your browser instead (a screenshot would need the password in the address)"
        )
    tracking.configure()
    client = mlflow.MlflowClient()
    ours = [e for e in client.search_experiments() if e.name in tracking.EXPERIMENTS.values()]
    if not ours or not client.search_runs([e.experiment_id for e in ours], max_results=1):
        sys.exit(f"ui-check: the store {tracking.store_label()} has no runs of ours: run `make run` first")
    for e in ours:  # a store from before the experiments were tagged
        tracking.ensure_experiment(e.name)
    churn = client.get_experiment_by_name("urm-churn")
    if server:  # the team's server serves its own UI: check it there, start nothing
        ui, base = None, uri.rstrip("/")
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        ui = subprocess.Popen(
            [str(Path(sys.executable).parent / "urm"), "ui", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).read()
                break
            except OSError:
                if ui is None:
                    sys.exit(f"ui-check: the team's MLflow server {base} does not answer")
                if ui.poll() is not None or time.time() > deadline:
                    sys.exit("ui-check: the MLflow UI did not start")
                time.sleep(0.5)
        failures = []
        runs_page = f"{base}/#/experiments/{churn.experiment_id}{tracking.UI_LINK_QUERY}"  # what urm ui links to
        dom = browser("--dump-dom", runs_page)
        names = {r.info.run_name for r in client.search_runs([churn.experiment_id])}
        if not any(n and n in dom for n in names):
            failures.append(f"the churn experiment's page shows none of its runs {sorted(names)}")
        for unwanted in ("Detect issues", "Overview"):
            if unwanted in dom:
                failures.append(f"the churn experiment's page shows {unwanted!r}")
        listing = browser("--dump-dom", f"{base}/#/experiments{tracking.UI_LINK_QUERY}")
        if "urm-churn" not in listing or ">Default<" in listing:
            failures.append("the experiment list does not show urm-churn, or shows an empty Default experiment")
        registry = browser("--dump-dom", f"{base}/#/models{tracking.UI_LINK_QUERY}")
        for name in ("urm-churn", "urm-survival", "urm-clv"):
            if name not in registry:
                failures.append(f"the registry page does not list {name}")
        clv = client.get_registered_model("urm-clv")
        model_page = f"{base}/#/models/urm-clv{tracking.UI_LINK_QUERY}"
        shown = browser("--dump-dom", model_page)
        for alias in clv.aliases:
            if alias not in shown:
                failures.append(f"the urm-clv page does not show the alias {alias}")
        images.mkdir(parents=True, exist_ok=True)
        browser(f"--screenshot={images / 'mlflow-runs.png'}", runs_page)
        browser(f"--screenshot={images / 'mlflow-registry.png'}", model_page)
        for f in failures:
            print(f"ui-check: {f}", file=sys.stderr)
        if failures:
            return 1
        print(f"ui-check: the runs page and the registry show what a team compares; screenshots in {images}")
        return 0
    finally:
        if ui is not None:
            ui.terminate()
            ui.wait(30)


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    raise SystemExit(main())
