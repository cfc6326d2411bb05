"""Generalist backends: ``openai`` (HTTP, vLLM / lmdeploy) and ``transformers`` (in-process).

Importing this package registers both; build one with :func:`create_backend`.
"""

from gsco_runtime.generalists import openai_http, transformers_local  # noqa: F401  (register)
from gsco_runtime.generalists.base import create_backend, list_backends, register_backend

__all__ = ["create_backend", "list_backends", "register_backend"]
