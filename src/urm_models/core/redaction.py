"""Secrets never written: the one redaction every writer applies (docs/reliability.md, "Secrets").

Two nets, applied together by :func:`scrub`:

- **URIs in any text** lose their password and their secret query parameters
  (:func:`redact_uri`): ``postgresql://urm:p@ss/word@db/urm?sslpassword=x`` becomes
  ``postgresql://urm:***@db/urm?sslpassword=***``. The password is everything between the user's
  ``:`` and the *last* ``@`` of the authority, so a password holding ``@``, ``:`` or ``/`` goes
  whole; a URI without a user (``postgresql://:secret@db``) loses its password too.
- **The secrets this process knows** (:func:`known_secrets`: the passwords and secret query
  values of the team settings read so far (:func:`remember`), ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``,
  ``PGPASSWORD``, ``URM_PSEUDONYM_KEY`` ...) are replaced wherever they appear, also outside a URI
  (a driver's message, a traceback's local variables), as written and as JSON or percent-encoding
  would spell them.

Manifests, the table's metadata, ``urm_publications``, ``champion.json``, the executed notebooks,
the command line's messages and logs, and ``urm ui`` all go through it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote

from .io import write_text

MASK = "***"

#: query parameters whose value is a secret (compared case-insensitively, ``-`` as ``_``)
SECRET_PARAMS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "sslpassword",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth",
        "authorization",
        "api_key",
        "apikey",
        "key",
        "access_key",
        "secret_key",
        "aws_secret_access_key",
        "sig",
        "signature",
        "x_amz_signature",
        "x_amz_security_token",
        "credential",
        "credentials",
        "sas",
        "private_key",
    }
)

#: environment variables whose value is a secret wherever it appears
SECRET_ENV = (
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "PGPASSWORD",
    "URM_PSEUDONYM_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "DATABRICKS_TOKEN",
)
#: the variables whose value is a URI (passwords inside them are secrets)
URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "URM_DATABASE", "URM_ARTIFACT_ROOT", "DATABASE_URL")

#: a bare secret shorter than this is masked only inside a URI, not wherever its letters occur
MIN_BARE_SECRET = 6

# scheme://  then the rest up to whitespace, a quote or a bracket that ends it in prose
_URI = re.compile(r"(?<![\w+.-])([A-Za-z][A-Za-z0-9+.\-]*)://([^\s\"'<>`]*)")


def _is_secret_param(name: str) -> bool:
    return unquote(name).strip().lower().replace("-", "_") in SECRET_PARAMS


_HOST = re.compile(r"[A-Za-z0-9._~\-\[\]%:]*")


def _host_end(rest: str, at: int) -> int | None:
    """Where the host after the ``@`` at ``at`` ends, if a host (and port) follows it."""
    end = _HOST.match(rest, at + 1).end()
    return end if end == len(rest) or rest[end] in "/?#" else None


def _split_authority(rest: str) -> tuple[str, str]:
    """``(authority, the rest)`` of what follows ``scheme://``. A password may hold ``@``, ``/``,
    ``?`` or ``#`` unescaped, so the authority ends after the host that follows the *last* ``@``
    before the query (or, when none is followed by a host there, the last ``@`` at all); without
    one, at the first of ``/?#``."""
    head = re.split(r"[?#]", rest, maxsplit=1)[0]
    for scope in (head, rest):
        for at in (m.start() for m in reversed(list(re.finditer("@", scope)))):
            end = _host_end(rest, at)
            if end is not None:
                return rest[:end], rest[end:]
    m = re.search(r"[/?#]", rest)
    return (rest, "") if m is None else (rest[: m.start()], rest[m.start() :])


def _redact_rest(scheme: str, rest: str) -> str:
    authority, tail = _split_authority(rest)
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            authority = f"{user}:{MASK}@{host}"
        elif scheme.lower().startswith(("http", "git", "ftp")) and len(userinfo) >= 20:
            authority = f"{MASK}@{host}"  # a token as the user name (https://<token>@host)
    if "?" in tail or "#" in tail or ";" in tail:

        def param(m: re.Match) -> str:
            name, eq = m.group(1), m.group(2)
            return f"{name}{eq}{MASK}" if eq and _is_secret_param(name) else m.group(0)

        tail = re.sub(r"(?<=[?&;#])([^=&;#]+)(=)?([^&;#]*)", param, tail)
    return f"{scheme}://{authority}{tail}"


def redact_uri(uri: str | None) -> str | None:
    """A URI as it may be shown and recorded: without its password or secret query values.
    Text that is not a URI comes back as it is (but scrubbed of known secrets: :func:`scrub`)."""
    if uri is None:
        return None
    return scrub(str(uri))


def _uri_secrets(uri: str) -> list[str]:
    """The password and secret query values of one URI (decoded and as written)."""
    m = _URI.match(uri.strip())
    if not m:
        return []
    scheme, rest = m.group(1), m.group(2)
    out = []
    authority, tail = _split_authority(rest)
    if "@" in authority:
        userinfo = authority.rsplit("@", 1)[0]
        if ":" in userinfo:
            out.append(userinfo.split(":", 1)[1])
        elif scheme.lower().startswith(("http", "git", "ftp")) and len(userinfo) >= 20:
            out.append(userinfo)
    for name, value in re.findall(r"(?<=[?&;#])([^=&;#]+)=([^&;#]*)", tail):
        if _is_secret_param(name):
            out.append(value)
    return [s for s in out if s]


_REMEMBERED: set[str] = set()
_REMEMBERED_URIS: set[str] = set()


def remember(uri: str | None = None, *, secret: str | None = None) -> None:
    """Make a URI's password (or a bare ``secret``) known to :func:`scrub` in this process: the
    team settings call it for every value they read (:mod:`urm_models.core.settings`)."""
    if uri:
        _REMEMBERED_URIS.add(str(uri))
    if secret:
        _REMEMBERED.add(str(secret))


def known_secrets() -> list[str]:
    """The secrets of this process's settings and environment, longest first, each also as
    percent-decoded and JSON-escaped text (how a message or a manifest may spell it)."""
    found: set[str] = set(_REMEMBERED)
    for uri in [os.environ.get(k, "") for k in URI_ENV] + sorted(_REMEMBERED_URIS):
        found.update(_uri_secrets(uri))
    found.update(v for k in SECRET_ENV if (v := os.environ.get(k)))
    spelled: set[str] = set()
    for s in found:
        for form in (s, unquote(s), quote(s, safe=""), json.dumps(s)[1:-1], json.dumps(unquote(s))[1:-1]):
            if form:
                spelled.add(form)
    return sorted(spelled, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` without passwords: every URI in it redacted, every known secret masked."""
    if not text:
        return text
    secrets = known_secrets() if secrets is None else list(secrets)
    out = text
    for s in secrets:  # before the URIs: a password holding '@' or '/' goes whole
        if len(s) >= MIN_BARE_SECRET:  # a shorter one only inside a URI (below)
            out = out.replace(s, MASK)
    return _URI.sub(lambda m: _redact_rest(m.group(1), m.group(2)), out)


def scrub_obj(obj, secrets: Iterable[str] | None = None):
    """A JSON-like value with every string in it scrubbed (keys too)."""
    secrets = known_secrets() if secrets is None else list(secrets)
    if isinstance(obj, str):
        return scrub(obj, secrets)
    if isinstance(obj, dict):
        return {scrub_obj(k, secrets): scrub_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub_obj(v, secrets) for v in obj)
    return obj


def scrub_file(path) -> bool:
    """Scrub a text file in place (atomically); whether anything changed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    new = scrub(text)
    if new == text:
        return False
    write_text(new, p)
    return True


class ScrubbingStream:
    """A text stream that scrubs what is written to it before passing it on: the command line's
    standard output and error (their messages, logs and any traceback) go through one."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):  # flush, fileno, isatty, encoding ... of the stream
        return getattr(self._stream, name)


__all__ = ["MASK", "redact_uri", "scrub", "scrub_obj", "scrub_file", "known_secrets", "remember", "ScrubbingStream"]
