"""Every example of docs/scheduling.md runs as printed, from a fresh clone, in an environment as
bare as the scheduler's: the cron line (before: `reports/cron.log: No such file or directory`,
the refresh never ran, and the team's store was lost with the shell), the systemd units
(`systemd-analyze verify`) and their command line."""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
CLONE_IN_DOCS = "/srv/urm-models"

#: what this machine's network needs to reach the package index (its TLS certificate bundle):
#: set system-wide on such a machine (/etc/environment), so the scheduler has them too
MACHINE = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "PIP_FIND_LINKS",
    "UV_CACHE_DIR",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "PIP_INDEX_URL",
    "URM_PSEUDONYM_KEY_FILE",
)


def _bare_env(path: str, **more) -> dict:
    env = {
        "PATH": path,
        "HOME": os.environ.get("HOME", "/root"),
        "SHELL": "/bin/sh",
        "LANG": "C.UTF-8",
        **{k: os.environ[k] for k in MACHINE if k in os.environ},
    }
    return {**env, **more}


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A fresh clone of the committed project (no .venv, no reports, no store), with the team
    file a member would write: a store of its own that is not the default one."""
    where = tmp_path_factory.mktemp("sched") / "urm-models"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(where)], check=True, timeout=120)
    team_store = where.parent / "team-store"
    (where / "team.yaml").write_text(
        f"tracking_uri: sqlite:///{team_store / 'mlflow.db'}\nartifact_root: {team_store / 'artifacts'}\n"
    )
    team_store.mkdir()
    return where


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", DOC, flags=re.S | re.M)


@pytest.mark.slow
def test_the_cron_line_runs_from_a_fresh_clone(clone):
    (line,) = [ln for ln in _blocks("cron")[0].splitlines() if ln.strip() and not ln.startswith("#")]
    command = line.split(None, 5)[5].replace(CLONE_IN_DOCS, str(clone))  # the five time fields, then the command
    assert not (clone / ".venv").exists() and not (clone / "reports").exists()
    out = subprocess.run(
        ["/bin/sh", "-c", command], env=_bare_env("/usr/bin:/bin"), capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    log = (clone / "reports" / "cron.log").read_text()
    assert re.search(r"urm refresh --dataset telco\nrefresh \S+-telco: ok in", log), log[-2000:]
    assert (clone / "reports" / "cron.log").stat().st_mode & 0o077 == 0  # owner-only, like every output
    assert (clone / "data" / "predictions" / "telco" / "latest" / "user_scores.parquet").is_file()
    # the team file, not a shell, chose the store: the team's has the runs, no local store was made
    assert (clone.parent / "team-store" / "mlflow.db").stat().st_size > 0 and not (clone / "mlruns").exists()


@pytest.mark.slow
def test_the_systemd_units_verify_and_their_command_runs(clone, tmp_path):
    units = {}
    for block in _blocks("ini"):
        name = block.splitlines()[0].lstrip("# ").strip()
        units[name] = block.replace(CLONE_IN_DOCS, str(clone))
    assert set(units) == {"urm-refresh.service", "urm-refresh.timer"}
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    if shutil.which("systemd-analyze"):
        out = subprocess.run(
            ["systemd-analyze", "verify", *(str(tmp_path / n) for n in units)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0 and "urm-refresh" not in out.stderr, out.stderr
    service = dict(ln.split("=", 1) for ln in units["urm-refresh.service"].splitlines() if "=" in ln)
    # after a `git pull` that changed the project's files, the schedule brings the environment up
    # to date without the network (from uv's cache): here every proxy is dead
    if not (clone / ".venv").exists():  # run alone, without the cron test before it
        subprocess.run(["make", "-s", "env"], cwd=clone, check=True, capture_output=True, timeout=900)
    with open(clone / "pyproject.toml", "a") as fh:
        fh.write("\n# a change pulled since the environment was made\n")
    dead = "http://127.0.0.1:9"
    offline = {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead, "NO_PROXY": ""}
    # what systemd gives a system service: its own PATH, no shell, the working directory
    out = subprocess.run(
        shlex.split(service["ExecStart"]),
        cwd=service["WorkingDirectory"],
        env=_bare_env("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **offline),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, (
        out.stdout[-2000:] + out.stderr[-3000:] + (clone / "reports" / "cron.log").read_text()[-3000:]
    )
    assert (clone / "data" / "predictions" / "telco" / "latest" / "user_scores.parquet").is_file()
