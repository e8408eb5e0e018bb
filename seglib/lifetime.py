"""Child processes that do not outlive the process that started them.

A killed test run, notebook kernel or script must leave no worker behind still writing files or holding a port.
On Linux the system can send a child a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``); the gunicorn
servers of the tests and chapter 13 (:mod:`seglib.webapp.server`) and the workers that generate the street scenes
(:mod:`seglib.synthetic.dataset`) both ask for it with :func:`death_signal`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["death_signal"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def death_signal(parent: int | None = None) -> Callable[[], bool] | None:
    """A function to call in a child process: from then on the system sends the child SIGTERM when ``parent``
    (default: this process) dies, even by SIGKILL; if the parent is already gone the child exits at once. It returns
    whether the system took the request. None where there is no such call (not Linux): watch ``os.getppid()``.

    ``prctl`` is looked up here, in the parent, so the returned function is safe as a ``subprocess`` ``preexec_fn``
    (between fork and exec it only calls it). The signal comes when the *thread* that started the child ends: start
    children from a thread that outlives them (the main thread does)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid() if parent is None else parent

    def set_death_signal() -> bool:
        taken = prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(128 + signal.SIGTERM)
        return taken

    return set_death_signal
