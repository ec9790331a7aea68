"""Secrets are never written: one redaction (urm_models.core.redaction) for every writer, checked on
every URI form a team uses and on what the command line prints when a store is down. The
end-to-end scan of a team's homes and database after a refresh, a schedule, a kill and a forget
is in test_team.py (it needs the PostgreSQL and the MLflow server there)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from urm_models.core import redaction, settings

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Pl@nted-s3cret"  # what each form below hides, in its own spelling


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: (URI, the secret in it as written, what the redacted URI keeps)
FORMS = [
    ("postgresql://urm:Pl@nted-s3cret@db.internal/urm", "Pl@nted-s3cret", "postgresql://urm:***@db.internal/urm"),
    ("postgresql://urm:Pl%40nted-s3cret@db.internal:5432/urm", "Pl%40nted-s3cret", "urm:***@db.internal:5432/urm"),
    ("postgresql://urm:pa/ss:w0rd#x@db/urm", "pa/ss:w0rd#x", "postgresql://urm:***@db/urm"),
    ("postgresql://urm:pa?ss@db/urm", "pa?ss", "postgresql://urm:***@db/urm"),
    ("postgresql://:n0-user-secret@db/urm", "n0-user-secret", "postgresql://:***@db/urm"),
    ("postgresql://db/urm?user=urm&password=q-secret-1&sslmode=require", "q-secret-1", "password=***&sslmode=require"),
    ("postgresql://db/urm?sslpassword=q-secret-2", "q-secret-2", "sslpassword=***"),
    ("mysql+pymysql://u:Pl@nted-s3cret@host:3306/x?charset=utf8", "Pl@nted-s3cret", "u:***@host:3306/x?charset=utf8"),
    ("http://member:Pl@nted-s3cret@mlflow.internal:5000", "Pl@nted-s3cret", "http://member:***@mlflow.internal:5000"),
    ("https://mlflow.internal/?token=t0ken-secret-9", "t0ken-secret-9", "https://mlflow.internal/?token=***"),
    ("https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/org/repo", "ghp_abcdefghijklmnopqrstuvwxyz0123", "***@"),
    ("s3://bucket/key?X-Amz-Signature=sig-secret-77&X-Amz-Expires=60", "sig-secret-77", "X-Amz-Signature=***"),
]


@pytest.mark.parametrize(
    ("uri", "secret", "kept"), FORMS, ids=[f[0].split("://")[0] + str(i) for i, f in enumerate(FORMS)]
)
def test_every_uri_form_loses_its_password(uri, secret, kept):
    assert redaction.scrub(uri, []) != uri
    shown = redaction.scrub(uri, [])
    assert secret not in shown and kept in shown
    # inside prose, a traceback line or a JSON document alike
    for text in (f"could not connect to {uri}: refused", f'  File "x.py", line 3, in f\n    url = "{uri}"'):
        assert secret not in redaction.scrub(text, [])
    assert secret not in json.dumps(redaction.scrub_obj({"store": uri, "nested": [{"u": uri}]}, []))
    # what it could be read as: the password, decoded
    assert settings.redact(uri) == redaction.scrub(uri)


def test_text_without_a_uri_is_left_as_it_is():
    for text in ("1997-09-30, 2,357 users", "a@b.c wrote: x", "sqlite:////home/u/mlruns/mlflow.db", ""):
        assert redaction.scrub(text, []) == text


def test_known_secrets_are_masked_outside_any_uri(monkeypatch):
    """A driver's message or a traceback may quote a password without its URI: the secrets of the
    settings this process read, and of the environment, are masked wherever they appear, as
    written, percent-decoded and JSON-escaped."""
    monkeypatch.setenv("URM_DATABASE", "postgresql://urm:Pl%40nted-s3cret%22q@db/urm")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-secret-123")
    settings.get("database")  # read as every entry point reads it
    text = "auth failed for 'Pl@nted-s3cret\"q' (Pl%40nted-s3cret%22q); token env-secret-123"
    out = redaction.scrub(text)
    assert "Pl@nted" not in out and "s3cret" not in out and "env-secret-123" not in out
    doc = json.dumps({"error": 'Pl@nted-s3cret"q'})
    assert "s3cret" not in redaction.scrub(doc)
    # a short password is masked only inside a URI, never wherever its letters occur
    assert redaction.scrub("the cat sat", ["cat"]) == "the cat sat"


def _urm(home: Path, *args, env=None, timeout=300):
    base = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "URM_DATABASE")}
    return subprocess.run(
        [sys.executable, "-m", "urm_models.cli", *args],
        capture_output=True,
        text=True,
        env={**base, "URM_HOME": str(home), **(env or {})},
        timeout=timeout,
        cwd=ROOT,
    )


def _everything(home: Path) -> str:
    out = []
    for path in home.rglob("*"):
        if path.is_file() and path.name != "team.yaml":
            out.append(path.read_bytes().decode("utf-8", "ignore"))
    return "\n".join(out)


@pytest.mark.integration
@pytest.mark.parametrize(
    "uri",
    [
        "http://member:{pw}@127.0.0.1:{port}",
        "http://127.0.0.1:{port}/?password={pw}",
        "http://:{pw}@127.0.0.1:{port}",
    ],
    ids=["user-password", "query", "no-user"],
)
def test_a_dead_server_is_one_clear_line_without_the_password(tmp_path, uri):
    """The schedule appends what `urm refresh --quiet` prints to reports/cron.log: a store that
    does not answer is one line naming it without its password, before anything runs."""
    uri = uri.format(pw="Pl%40nted-s3cret", port=_closed_port())
    (tmp_path / "team.yaml").write_text(f"tracking_uri: {uri}\n")
    out = _urm(tmp_path, "refresh", "--dataset", "cdnow_sample", "--fast", "--quiet")
    said = out.stdout + out.stderr
    assert out.returncode == 1, said
    assert "does not answer" in said and "Traceback" not in said, said
    assert "Pl%40nted" not in said and "Pl@nted" not in said and "s3cret" not in said
    assert "127.0.0.1" in said  # the server is named
    assert not (tmp_path / "reports" / "runs").exists()  # nothing ran
    assert "s3cret" not in _everything(tmp_path)
    # urm ui names the server the same way
    ui = _urm(tmp_path, "ui")
    assert ui.returncode == 0 and "s3cret" not in ui.stdout + ui.stderr and "Pl%40" not in ui.stdout + ui.stderr


@pytest.mark.integration
def test_an_unreachable_team_database_is_a_clear_error(tmp_path):
    """A PostgreSQL that does not answer when a refresh takes its lock, publishes or reads the
    erasure register: one line naming it without its password, exit 1, nothing run."""
    (tmp_path / "team.yaml").write_text(
        f"database: postgresql://urm:Pl%40nted-s3cret@127.0.0.1:{_closed_port()}/urm?connect_timeout=3\n"
    )
    for args in (
        ("refresh", "--dataset", "cdnow_sample", "--fast", "--quiet"),
        ("score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30"),
        ("forget", "00001"),
    ):
        out = _urm(tmp_path, *args)
        said = out.stdout + out.stderr
        assert out.returncode == 1, (args, said)
        assert "team database" in said and "cannot be" in said and "Traceback" not in said, (args, said)
        assert "s3cret" not in said and "Pl%40" not in said, (args, said)
    assert "s3cret" not in _everything(tmp_path)


def test_unexpected_errors_are_printed_without_secrets(tmp_path, monkeypatch, capsys):
    """Whatever the command prints goes through the redaction, a bug's traceback included."""
    from urm_models import cli

    monkeypatch.setenv("URM_HOME", str(tmp_path))
    monkeypatch.setenv("URM_DATABASE", "postgresql://urm:Pl%40nted-s3cret@db.invalid/urm")
    settings.get("database")

    def boom(args):
        raise RuntimeError("postgresql://urm:Pl%40nted-s3cret@db.invalid/urm and Pl@nted-s3cret")

    monkeypatch.setattr(cli, "_cmd_prune", boom)
    stdout, stderr = sys.stdout, sys.stderr
    assert cli.main(["prune", "--keep", "1"]) == 1
    assert (sys.stdout, sys.stderr) == (stdout, stderr)  # the command's streams are put back
    out = capsys.readouterr()
    assert "unexpected error" in out.err and "RuntimeError" in out.err
    assert "s3cret" not in out.out + out.err and "db.invalid" in out.err


def test_redaction_stays_a_base_module():
    """The redaction is imported by every writer, so it imports nothing above the base layer."""
    text = (ROOT / "src" / "urm_models" / "core" / "redaction.py").read_text()
    assert "from . import settings" not in text and "from .settings" not in text
