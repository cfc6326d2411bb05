"""The one door to Flower's non-public API (pinned: ``flwr==1.42.0`` in pyproject.toml).

Flower's public API is ``flwr.app``, ``flwr.clientapp`` (with ``flwr.clientapp.mod``),
``flwr.serverapp`` and ``flwr.serverapp.strategy``; GSCo imports those directly. Everything else
GSCo needs from Flower is imported here and only here, each with the reason below, so that a
Flower upgrade that moves one breaks this module alone: ``tests/specialist/test_flower_adapter.py``
imports every name of :data:`ADAPTED` from where it is listed and fails naming this module.

Site side (``site_agent.federation``):

* the gate (``gate.py``) runs the approved ClientApp itself instead of ``flwr-clientapp``, so
  that it can refuse a task whose FAB hash is not on the site's allow-list *before* any of the
  app's code is installed or imported. That is the SuperNode's task loop, which Flower keeps
  internal: the Runtime API messages (``AcquireTaskRequest``, ``PullTaskInputRequest``,
  ``PullAppMessagesRequest``, ``Node``), their client (``RuntimeHttpClient``, the retry invoker,
  the token / version / SuperExec-auth interceptors), the protobuf conversions
  (``context_from_proto``, ``fab_from_proto``, ``run_from_proto``, ``Run``, ``Fab``), pulling the
  message objects (``make_pull_object_fn_protobuf``, ``make_confirm_message_received_fn_protobuf``,
  ``pull_and_inflate_object_from_tree``), the heartbeat (``HeartbeatSender``,
  ``make_task_heartbeat_fn_http``, ``TaskIdentity``, ``TaskType``), installing and loading the
  app (``install_from_fab``, ``get_load_client_app_fn``) and pushing the reply
  (``push_message``, ``push_task_output``, ``SubStatus``);
* error replies carry Flower's ``ErrorCode`` (``replies.py``, ``gate.py``);
* ``site-agent federation approve`` hashes a FAB exactly as Flower builds it
  (``build_fab_from_disk``), so the approved hash is the one the SuperLink sends;
* the site's mods are typed as Flower's ``ClientAppCallable`` and read the clipping norm that
  Flower's server-side DP wrapper sends under ``KEY_CLIPPING_NORM`` (``dp.py``, ``encoding.py``).

Hub side (``hub.federation.transport``): replies are pulled in parallel through the Grid's own
connection (``PullAppMessagesRequest`` and the same object-pull functions), because
``Grid.pull_messages`` pulls one object at a time; ``ObjectPullError`` is what a vanished object
raises there.

The Grid's connection itself is private (``HttpGrid._runtime_client``, its ``node``):
:func:`grid_connection` reads it, or says there is none (another Grid), and the transport then
falls back to the public ``Grid.pull_messages``.

Measurement and tests: ``bench/wire_format.py`` counts a message's objects as Flower sends them
(``get_all_nested_objects``); the tests build messages as the SuperLink does (``make_message``)
and read a SuperNode key as ``flwr supernode register`` does (``try_load_public_key``).
"""

from __future__ import annotations

from typing import Any

from flwr.app.message import make_message
from flwr.cli.build import build_fab_from_disk
from flwr.cli.install import install_from_fab
from flwr.cli.supernode.register import try_load_public_key
from flwr.clientapp.typing import ClientAppCallable
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.constant import ErrorCode, SubStatus
from flwr.common.serde import context_from_proto, fab_from_proto, run_from_proto
from flwr.proto.node_pb2 import Node  # pylint: disable=no-name-in-module
from flwr.proto.runtime_pb2 import (  # pylint: disable=no-name-in-module
    AcquireTaskRequest,
    PullAppMessagesRequest,
    PullTaskInputRequest,
)
from flwr.serverapp import Grid
from flwr.supercore.constant import TaskType
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM
from flwr.supercore.fab import Fab
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import ObjectPullError, pull_and_inflate_object_from_tree
from flwr.supercore.interceptors import (
    RuntimeTokenHttpInterceptor,
    RuntimeVersionHttpInterceptor,
    SuperExecAuthHttpInterceptor,
)
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.run import Run
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.task_identity import TaskIdentity
from flwr.superlink.grid.http_grid import HttpGrid
from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

# Private attributes of Flower classes that GSCo reads (checked by the adapter test).
ADAPTED_ATTRIBUTES: dict[type, tuple[str, ...]] = {HttpGrid: ("_runtime_client", "node")}

# Flower's public packages: imported directly anywhere; every other ``flwr`` module only here.
PUBLIC_MODULES = (
    "flwr.app",
    "flwr.clientapp",
    "flwr.clientapp.mod",
    "flwr.serverapp",
    "flwr.serverapp.strategy",
)

# name -> the Flower module it is taken from (checked by the adapter test after an upgrade)
ADAPTED: dict[str, str] = {
    "make_message": "flwr.app.message",
    "build_fab_from_disk": "flwr.cli.build",
    "install_from_fab": "flwr.cli.install",
    "try_load_public_key": "flwr.cli.supernode.register",
    "ClientAppCallable": "flwr.clientapp.typing",
    "get_load_client_app_fn": "flwr.clientapp.utils",
    "ErrorCode": "flwr.common.constant",
    "SubStatus": "flwr.common.constant",
    "context_from_proto": "flwr.common.serde",
    "fab_from_proto": "flwr.common.serde",
    "run_from_proto": "flwr.common.serde",
    "Node": "flwr.proto.node_pb2",
    "AcquireTaskRequest": "flwr.proto.runtime_pb2",
    "PullAppMessagesRequest": "flwr.proto.runtime_pb2",
    "PullTaskInputRequest": "flwr.proto.runtime_pb2",
    "TaskType": "flwr.supercore.constant",
    "KEY_CLIPPING_NORM": "flwr.supercore.differential_privacy",
    "Fab": "flwr.supercore.fab",
    "HeartbeatSender": "flwr.supercore.heartbeat",
    "make_task_heartbeat_fn_http": "flwr.supercore.heartbeat",
    "get_all_nested_objects": "flwr.supercore.inflatable.inflatable_object",
    "make_confirm_message_received_fn_protobuf": "flwr.supercore.inflatable.inflatable_protobuf_utils",
    "make_pull_object_fn_protobuf": "flwr.supercore.inflatable.inflatable_protobuf_utils",
    "ObjectPullError": "flwr.supercore.inflatable.inflatable_utils",
    "pull_and_inflate_object_from_tree": "flwr.supercore.inflatable.inflatable_utils",
    "RuntimeTokenHttpInterceptor": "flwr.supercore.interceptors",
    "RuntimeVersionHttpInterceptor": "flwr.supercore.interceptors",
    "SuperExecAuthHttpInterceptor": "flwr.supercore.interceptors",
    "make_simple_http_retry_invoker": "flwr.supercore.retry",
    "Run": "flwr.supercore.run",
    "RuntimeHttpClient": "flwr.supercore.runtime",
    "TaskIdentity": "flwr.supercore.task_identity",
    "push_message": "flwr.supernode.runtime.run_clientapp",
    "push_task_output": "flwr.supernode.runtime.run_clientapp",
}


def grid_connection(grid: Grid) -> tuple[Any, Any] | None:
    """``(runtime client, node)`` of the ServerApp's Grid, or None when it has no such connection."""
    client = getattr(grid, "_runtime_client", None)
    node = getattr(grid, "node", None)
    return None if client is None or node is None else (client, node)


__all__ = [
    "ADAPTED",
    "ADAPTED_ATTRIBUTES",
    "PUBLIC_MODULES",
    "grid_connection",
    "AcquireTaskRequest",
    "ClientAppCallable",
    "ErrorCode",
    "Fab",
    "HeartbeatSender",
    "KEY_CLIPPING_NORM",
    "Node",
    "ObjectPullError",
    "PullAppMessagesRequest",
    "PullTaskInputRequest",
    "Run",
    "RuntimeHttpClient",
    "RuntimeTokenHttpInterceptor",
    "RuntimeVersionHttpInterceptor",
    "SubStatus",
    "SuperExecAuthHttpInterceptor",
    "TaskIdentity",
    "TaskType",
    "build_fab_from_disk",
    "context_from_proto",
    "fab_from_proto",
    "get_all_nested_objects",
    "get_load_client_app_fn",
    "install_from_fab",
    "make_confirm_message_received_fn_protobuf",
    "make_message",
    "make_pull_object_fn_protobuf",
    "make_simple_http_retry_invoker",
    "make_task_heartbeat_fn_http",
    "pull_and_inflate_object_from_tree",
    "push_message",
    "push_task_output",
    "run_from_proto",
    "try_load_public_key",
]
