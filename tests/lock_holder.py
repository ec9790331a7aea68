"""A process that holds the refresh lock of a project home (importable, so that a spawned
multiprocessing child can run it)."""

import os


def hold_lock(home, ready, release, seconds: float = 60) -> None:
    os.environ["URM_HOME"] = str(home)
    from urm_models import pipeline

    with pipeline.refresh_lock():
        ready.set()
        release.wait(seconds)
