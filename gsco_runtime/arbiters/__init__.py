"""Arbiters: ``consensus`` (embedded, no generalist) and ``meddr`` (generalist decides).

Importing this package registers both; build one with :func:`create_arbiter`.
"""

from gsco_runtime.arbiters import consensus, meddr  # noqa: F401  (register the arbiters)
from gsco_runtime.arbiters.base import create_arbiter, list_arbiters, register_arbiter

__all__ = ["create_arbiter", "list_arbiters", "register_arbiter"]
