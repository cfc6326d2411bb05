"""The site's task gate: runs hub messages only with Flower apps the site approved.

``site-agent join`` starts the SuperNode with ``--isolation process``, so the SuperNode never
starts app code itself; this gate takes its place (the role of Flower's SuperExec). For every
message it pulls the task's input from the SuperNode's local Runtime API, hashes the FAB bytes
it received and checks the hash against the site's allow-list (:mod:`.approval`):

* not approved: nothing of the app is installed or imported; the hub gets an error reply that
  says the site refused the code and how the operator can approve it;
* approved: the app is installed into the site's own ``FLWR_HOME`` and its ClientApp runs in this
  long-lived process, so torch, the site's data and the model stay loaded between rounds
  (Flower's default starts a fresh process per message, ~4 s of imports each time).

An exception inside an approved app becomes an error reply that names only the exception type:
exception texts can contain paths or values read from site data.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

import click
from flwr.app import Context, Error, Message

from gsco_common.errors import FederationError
from site_agent.federation.approval import ApprovalStore
from specialist.federation.flower import (
    AcquireTaskRequest,
    ErrorCode,
    Fab,
    HeartbeatSender,
    Node,
    PullAppMessagesRequest,
    PullTaskInputRequest,
    Run,
    RuntimeHttpClient,
    RuntimeTokenHttpInterceptor,
    RuntimeVersionHttpInterceptor,
    SubStatus,
    SuperExecAuthHttpInterceptor,
    TaskIdentity,
    TaskType,
    context_from_proto,
    fab_from_proto,
    get_load_client_app_fn,
    install_from_fab,
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
    make_simple_http_retry_invoker,
    make_task_heartbeat_fn_http,
    pull_and_inflate_object_from_tree,
    push_message,
    push_task_output,
    run_from_proto,
)

log = logging.getLogger(__name__)

_ACQUIRE_METHODS = frozenset({"/flwr.proto.Runtime/AcquireTask"})
PULL_BACKOFF_S = (0.05, 0.5)
"""Retry delays (first, cap) while the SuperNode is still receiving the message's weights."""


def refusal_reason(fab_hash: str) -> str:
    return (
        f"site refused to run unapproved code: Flower app sha256:{fab_hash} is not on this site's "
        "approved list (the site operator can review it and run `site-agent federation approve`)"
    )


@dataclass(frozen=True)
class TaskOutcome:
    """What happened to one task: for the join command's log."""

    run_id: int
    message_type: str
    approved: bool
    ok: bool
    pull_s: float
    work_s: float
    push_s: float


class TaskGate:
    """Poll the SuperNode for tasks and run them through the approval check, one at a time."""

    def __init__(
        self,
        runtime_address: str,
        approvals: ApprovalStore,
        *,
        auth_secret: bytes | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        self.runtime_address = runtime_address
        self.approvals = approvals
        self.auth_secret = auth_secret
        self.poll_interval = poll_interval

    def _client(self, token: str | None) -> RuntimeHttpClient:
        interceptors: list = [RuntimeVersionHttpInterceptor(component_name="SuperExec")]
        if token is not None:
            interceptors.append(RuntimeTokenHttpInterceptor(token))
        elif self.auth_secret is not None:
            interceptors.append(
                SuperExecAuthHttpInterceptor(
                    master_secret=self.auth_secret, protected_methods=_ACQUIRE_METHODS
                )
            )
        return RuntimeHttpClient.from_server_address(
            server_address=self.runtime_address,
            insecure=True,
            root_certificates=None,
            interceptors=interceptors,
            retry_invoker=make_simple_http_retry_invoker(),
        )

    def serve(self, stop: threading.Event) -> None:
        """Run tasks until ``stop`` is set."""
        client = self._client(None)
        try:
            while not stop.is_set():
                response = client.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP]))
                if response.HasField("task") and response.token:
                    outcome = self.run_task(response.token)
                    verdict = (
                        "done" if outcome.ok else "failed" if outcome.approved else "REFUSED (not approved)"
                    )
                    log.info(
                        "run %s: %s message %s (receive %.1f s, work %.1f s, reply %.1f s)",
                        outcome.run_id,
                        outcome.message_type,
                        verdict,
                        outcome.pull_s,
                        outcome.work_s,
                        outcome.push_s,
                    )
                else:
                    stop.wait(self.poll_interval)
        finally:
            client.close()

    def run_task(self, token: str) -> TaskOutcome:
        """Pull one task's input, check its app, answer it, and report the task's final status."""
        client = self._client(token)
        heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
        heartbeat.start()
        context: Context | None = None
        status, details = SubStatus.FAILED, "task input could not be read"
        started = time.perf_counter()
        try:
            message, context, run, fab = pull_task_input(client)
            pulled = time.perf_counter()
            fab_hash = hashlib.sha256(fab.content).hexdigest()
            approved = self.approvals.is_approved(fab_hash)
            if approved:
                reply = self._execute(message, context, run, fab)
                details = reply.error.reason if reply.has_error() else ""
            else:
                details = refusal_reason(fab_hash)
                log.error(details)
                reply = Message(Error(code=ErrorCode.INVALID_FAB, reason=details), reply_to=message)
            if not reply.has_error():
                status = SubStatus.COMPLETED
            worked = time.perf_counter()
            push_message(client, reply, context)
            return TaskOutcome(
                run_id=context.run_id,
                message_type=message.metadata.message_type,
                approved=approved,
                ok=not reply.has_error(),
                pull_s=pulled - started,
                work_s=worked - pulled,
                push_s=time.perf_counter() - worked,
            )
        finally:
            push_task_output(client=client, context=context, sub_status=status, details=details)
            if heartbeat.is_running:
                heartbeat.stop()
            client.close()

    def _execute(self, message: Message, context: Context, run: Run, fab: Fab) -> Message:
        """Install the approved FAB and run its ClientApp on the message in this process."""
        try:
            install_from_fab(fab.content, skip_prompt=True)
            load = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
            client_app = load(run.fab_id, run.fab_version, fab.hash_str)
            return client_app(message=message, context=context)
        except (click.ClickException, ImportError) as exc:
            log.error("the approved app could not be loaded: %s", type(exc).__name__)
            reason = "site could not load the approved app (see the site's log)"
            return Message(Error(code=ErrorCode.LOAD_CLIENT_APP_EXCEPTION, reason=reason), reply_to=message)
        except Exception as exc:  # noqa: BLE001  (any app failure must still answer the hub)
            log.exception("the ClientApp raised an exception")
            reason = f"ClientApp raised {type(exc).__name__} at the site (details stay in the site's log)"
            return Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)


def pull_task_input(client: RuntimeHttpClient) -> tuple[Message, Context, Run, Fab]:
    """Pull a task's message, context, run and FAB from the SuperNode.

    As Flower's ``run_clientapp.pull_task_input``, with a short retry backoff (``PULL_BACKOFF_S``;
    why: docs/benchmarks.md, "Performance notes behind code choices").
    """
    task_input = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id = task_input.task_id
    TaskIdentity.run_id = task_input.run.run_id
    TaskIdentity.node_id = task_input.context.node_id
    context = context_from_proto(task_input.context)
    run = run_from_proto(task_input.run)
    fab = fab_from_proto(task_input.fab)
    pulled = client.PullMessages(PullAppMessagesRequest())
    if not pulled.messages_list:
        raise FederationError("the SuperNode handed over a task without a message")
    node = Node(node_id=context.node_id)
    tree = pulled.message_object_trees[0]
    message = pull_and_inflate_object_from_tree(
        tree,
        make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
        make_confirm_message_received_fn_protobuf(client.ConfirmMessageReceived, node, context.run_id),
        return_type=Message,
        initial_backoff=PULL_BACKOFF_S[0],
        backoff_cap=PULL_BACKOFF_S[1],
    )
    message.metadata.__dict__["_message_id"] = tree.object_id
    return message, context, run, fab
