"""A process that holds the refresh lock of a project home (importable, so that a spawned
multiprocessing child can run it)."""

import contextlib
import multiprocessing as mp
import os


def hold_lock(home, ready, release, seconds: float = 60) -> None:
    os.environ["URM_HOME"] = str(home)
    from urm_models.core import locks

    with locks.refresh_lock():
        ready.set()
        release.wait(seconds)


@contextlib.contextmanager
def held_lock(home):
    """Another process holds ``home``'s refresh lock for the duration of the block."""
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=hold_lock, args=(home, ready, release))
    holder.start()
    try:
        assert ready.wait(60), "the lock holder did not take the lock"
        yield
    finally:
        release.set()
        holder.join(30)
