"""One thread budget shared by every onnxruntime session (and retrieval search) of a runtime.

Each session runs with ``threads`` intra-op threads (no idle spinning) and every run, like every
round of FAISS searches, goes through one gate, so ten specialists on a 2-core machine use two
busy threads, not twenty. Concurrent
requests are not serialised one by one: the micro-batchers group them first, so each gate pass
carries a whole batch. onnxruntime's process-global thread pool would do the same job but forbids
per-session pools for every other session of the process (export parity checks, policy checks),
so it is not used.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import faiss
import onnxruntime as ort


class ThreadBudget:
    """``threads`` compute threads for all sessions and retrieval searches of one runtime."""

    def __init__(self, threads: int = 2) -> None:
        self.threads = max(1, threads)
        self._gate = threading.RLock()  # re-entrant: a search may build its index (session runs) inside
        faiss.omp_set_num_threads(self.threads)

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        return options

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold the budget for one session run or one round of retrieval searches."""
        with self._gate:
            yield
