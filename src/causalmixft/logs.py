"""Logging of the workflow's scripts: one helper every script under workflow/scripts uses."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def script_logging(log_path: str | os.PathLike, append: bool = False) -> Iterator[None]:
    """Send stdout, stderr and logging of a Snakemake script to its log file (tracebacks included).

    Line-buffered, so a long job's log can be followed while it runs. ``append`` keeps what the
    file holds: a resumable job (pretraining) continues the log of its earlier attempts.
    """
    with (
        open(log_path, "a" if append else "w", buffering=1) as handle,
        contextlib.redirect_stdout(handle),
        contextlib.redirect_stderr(handle),
    ):
        logging.basicConfig(stream=handle, level=logging.INFO, format=FORMAT, force=True)
        try:
            yield
        except BaseException:
            logging.getLogger("causalmixft").exception("stage failed")
            raise
        finally:
            handle.flush()
            logging.basicConfig(stream=sys.__stderr__, force=True)
