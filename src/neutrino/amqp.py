"""The bus over AMQP (RabbitMQ), for agents in other processes or on other hosts (kombu).

Two things travel, as on Neutron's oslo.messaging bus:

* change events: a topic exchange ``<prefix>.hosts``; each agent has its own exclusive queue,
  bound with its host's routing key and the broadcast key, so a change reaches only the hosts
  it concerns (one message each) and a change of unknown reach every host (events only wake
  agents up and say what to fetch again);
* agent calls (``AgentRpc``: sync, report_state, update_port_status, metadata_lookup):
  request/reply on the queue ``<prefix>.rpc``, answers to the caller's exclusive reply queue
  matched by correlation id. Any number of API servers may consume the same RPC queue.

JSON only (no pickle): the messages are the plain dicts the services return.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue, binding
from kombu.message import Message

from neutrino import messages
from neutrino.bus import Event, Handler

LOG = logging.getLogger(__name__)


class RpcError(Exception):
    """The server answered a call with an error, or did not answer in time."""


BROADCAST = "all"


def changes_exchange(prefix: str) -> Exchange:
    return Exchange(f"{prefix}.hosts", type="topic", durable=False, auto_delete=False)


def host_key(host: str) -> str:
    """The routing key of one host: a digest, so no host name (dots, ``*``, ``#``, 255 bytes)
    can bind to another host's events or to all of them."""
    return "host." + hashlib.sha256(host.encode()).hexdigest()[:32]


def routing_keys(event: Event) -> list[str]:
    """One key per host the event reaches, its ``first`` hosts (a port's own) before the others:
    the agents' fetches queue up at the server in the order the events reach them."""
    if event.hosts is None:
        return [BROADCAST]
    return [host_key(h) for h in sorted(event.hosts, key=lambda h: (h not in event.first, h))]


def _event_body(topic: str, event: Event) -> dict[str, Any]:
    return {"topic": topic, "resource": event.resource, "id": event.id, "action": event.action,
            "networks": sorted(event.networks), "routers": sorted(event.routers), "groups": sorted(event.groups)}


def parse_event(body: Any) -> Event:
    def ids(key: str) -> frozenset[str]:
        found = body.get(key)
        return frozenset(str(i) for i in found) if isinstance(found, list) else frozenset()
    return Event(str(body.get("resource", "")), str(body.get("id", "")), str(body.get("action", "")),
                 networks=ids("networks"), routers=ids("routers"), groups=ids("groups"))


def _rpc_queue(name: str) -> Queue:
    """The call queue; server and clients declare it alike (it goes when its last server does)."""
    return Queue(name, durable=False, auto_delete=True)


class _Loop:
    """A consumer thread that reconnects: broker restarts delay wake-ups, they never stop them."""

    def __init__(self, url: str, name: str, queues: Callable[[Connection], list[Queue]],
                 on_message: Callable[[Connection, Any, Message], None]) -> None:
        self.url = url
        self.queues = queues
        self.on_message = on_message
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, timeout: float = 10.0, wait: bool = True) -> None:
        self._thread.start()
        if wait and not self._ready.wait(timeout):
            raise RpcError(f"cannot consume from {redact(self.url)} within {timeout:.0f} s: is RabbitMQ running?")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with Connection(self.url, connect_timeout=5) as conn:
                    consumer = Consumer(conn, queues=self.queues(conn), accept=["json"],
                                        callbacks=[lambda body, msg: self.on_message(conn, body, msg)])
                    with consumer:
                        self._ready.set()
                        drain(conn, self._stop)
            except Exception:
                if self._stop.is_set():
                    return
                LOG.warning("AMQP consumer %s: no connection to %s; retrying", self._thread.name, redact(self.url))
                self._stop.wait(2.0)


def drain(conn: Connection, stop: threading.Event) -> None:
    """Deliver messages to the connection's consumers until ``stop`` is set."""
    while not stop.is_set():
        try:
            conn.drain_events(timeout=0.5)
        except TimeoutError:
            continue


def redact(url: str) -> str:
    """The URL without its credentials, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}"


class AmqpBus:
    """Change events over a topic exchange, one message per host concerned, sent from a thread
    of their own.

    ``publish`` runs on the API's event loop (after every write), so it only queues: a broker
    that is slow, down or blocking publishers never holds up a request. Events are wake-ups,
    so while the broker is unreachable they are dropped; the agents' periodic resync covers
    what they missed. ``sent_messages``/``sent_bytes`` count what left (benchmarks).
    """

    def __init__(self, url: str, prefix: str = "neutrino") -> None:
        self.url = url
        self.exchange = changes_exchange(prefix)
        self._queue: queue.Queue[tuple[dict[str, Any], list[str]] | None] = queue.Queue(maxsize=1000)
        self._sender: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent_messages = 0
        self.sent_bytes = 0

    def publish(self, topic: str, event: Event) -> None:
        if event.hosts is not None and not event.hosts:
            return  # it concerns no host
        keys = routing_keys(event)
        body = (_event_body(topic, event), keys)
        with self._lock:
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_loop, name="bus-publisher", daemon=True)
                self._sender.start()
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            pass  # a thousand wake-ups already wait: one more changes nothing

    def _send_loop(self) -> None:
        conn: Connection | None = None
        while True:
            body = self._queue.get()
            if body is None:
                break
            event, keys = body
            try:
                conn = self._publish(conn, event, keys)
            except Exception as exc:
                LOG.warning("cannot publish to %s (%s); agents catch up at their next resync", redact(self.url), exc)
                conn = None
                self._drain()
                time.sleep(1.0)
        if conn is not None:
            conn.release()

    def _publish(self, conn: Connection | None, body: dict[str, Any], keys: list[str]) -> Connection:
        """Publish ``body`` to each routing key, each confirmed; returns the connection to keep.

        A broker that restarted since the last event left ``conn`` closed without a word, and a
        message written to it is lost silently (the write itself succeeds): only the confirm
        that never comes tells. So every event is confirmed, and one whose old connection
        failed gets one more try on a fresh connection before it is given up (a host may then
        hear it twice: events are wake-ups).
        """
        size = len(json.dumps(body))
        while True:
            fresh = conn is None
            if conn is None:
                conn = Connection(self.url, connect_timeout=5, transport_options={"confirm_publish": True})
            try:
                producer = Producer(conn.default_channel, exchange=self.exchange, serializer="json")
                for key in keys:
                    producer.publish(body, routing_key=key, declare=[self.exchange], confirm_timeout=5)
                    self.sent_messages += 1
                    self.sent_bytes += size
                return conn
            except Exception:
                conn.release()
                conn = None
                if fresh:
                    raise

    def _drain(self) -> None:
        """Drop what queued during an outage: the agents resync anyway."""
        try:
            while self._queue.get_nowait() is not None:
                pass
        except queue.Empty:
            pass

    def close(self) -> None:
        if self._sender is not None:
            self._queue.put(None)
            self._sender.join(timeout=5)

    def subscribe(self, topic: str, handler: Handler, host: str | None = None) -> Callable[[], None]:
        """An exclusive queue bound to ``host``'s key and the broadcast key (every key without
        ``host``); the events it receives are the ones that reach ``host``."""
        keys = ["#"] if host is None else [host_key(host), BROADCAST]

        def queues(conn: Connection) -> list[Queue]:
            name = f"{self.exchange.name}.{uuid.uuid4().hex[:12]}"
            return [Queue(name, exclusive=True, auto_delete=True, durable=False,
                          bindings=[binding(self.exchange, routing_key=k) for k in keys])]

        def on_message(_conn: Connection, body: Any, msg: Message) -> None:
            msg.ack()
            if isinstance(body, dict) and body.get("topic") == topic:
                handler(parse_event(body))

        loop = _Loop(self.url, f"bus-{topic}", queues, on_message)
        loop.start(wait=False)  # an agent started before the broker keeps trying in the background
        return loop.stop


class RpcServer:
    """Answers agents' calls from ``target`` (the server's ``AgentRpc``)."""

    def __init__(self, url: str, target: Any, prefix: str = "neutrino") -> None:
        self.target = target
        self.queue_name = f"{prefix}.rpc"
        self._loop = _Loop(url, "rpc-server", self._queues, self._on_message)

    def _queues(self, conn: Connection) -> list[Queue]:
        return [_rpc_queue(self.queue_name)]

    def _on_message(self, conn: Connection, body: Any, msg: Message) -> None:
        reply: dict[str, Any]
        try:
            method, kwargs = messages.parse_request(body)
            reply = {"version": messages.VERSION, "result": getattr(self.target, method)(**kwargs)}
        except Exception as exc:
            LOG.exception("agent call failed")
            reply = {"version": messages.VERSION, "error": f"{type(exc).__name__}: {exc}"}
        reply_to = msg.properties.get("reply_to")
        if reply_to:
            Producer(conn.default_channel, serializer="json").publish(
                reply, routing_key=reply_to, correlation_id=msg.properties.get("correlation_id"))
        msg.ack()

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()


class RpcClient:
    """The agent's side: the ``Rpc`` protocol of ``agent.host`` over AMQP, one call at a time."""

    def __init__(self, url: str, prefix: str = "neutrino", timeout: float = 30.0) -> None:
        self.url = url
        self.queue_name = f"{prefix}.rpc"
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._reply: Queue | None = None
        self._consumer: Consumer | None = None
        self._answers: dict[str, Any] = {}
        self.received_bytes = 0  # the answers' bodies as they travelled (benchmarks)

    def _call(self, method: str, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return self._call_locked(method, kwargs)
            except RpcError:
                raise
            except Exception as exc:
                self._close()
                raise RpcError(f"{method}: {type(exc).__name__}: {exc}; is RabbitMQ at {redact(self.url)} up?") from exc

    def _call_locked(self, method: str, kwargs: dict[str, Any]) -> Any:
        if self._conn is None:
            self._conn = Connection(self.url, connect_timeout=5)
            self._reply = Queue(f"{self.queue_name}.reply.{uuid.uuid4().hex[:12]}", exclusive=True,
                                auto_delete=True, durable=False)
            self._consumer = Consumer(self._conn, queues=[self._reply], accept=["json"], callbacks=[self._collect])
            self._consumer.consume()
        assert self._reply is not None
        correlation = uuid.uuid4().hex
        Producer(self._conn.default_channel, serializer="json").publish(
            messages.request(method, **kwargs), routing_key=self.queue_name, reply_to=self._reply.name,
            correlation_id=correlation, declare=[_rpc_queue(self.queue_name)],
            expiration=self.timeout)
        waited = 0.0
        while correlation not in self._answers:
            if waited >= self.timeout:
                raise RpcError(f"{method}: no answer from the server within {self.timeout:.0f} s")
            try:
                self._conn.drain_events(timeout=0.5)
            except TimeoutError:
                waited += 0.5
        answer = self._answers.pop(correlation)
        messages.check_version(answer.get("version") if isinstance(answer, dict) else None)
        if "error" in answer:
            raise RpcError(f"{method}: {answer['error']}")
        return answer.get("result")

    def _collect(self, body: Any, msg: Message) -> None:
        msg.ack()
        self.received_bytes += len(msg.body or b"")
        correlation = msg.properties.get("correlation_id")
        if correlation:
            self._answers[str(correlation)] = body

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.release()
            finally:
                self._conn = None
                self._reply = None

    def close(self) -> None:
        with self._lock:
            self._close()

    # the Rpc protocol ----------------------------------------------------------------

    def sync(self, host: str, scope: messages.SyncScope | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("sync", host=host, **({"scope": dict(scope)} if scope else {}))
        return result

    def report_state(self, host: str, agent_type: str, configurations: Mapping[str, Any],
                     start_flag: bool = False) -> None:
        self._call("report_state", host=host, agent_type=agent_type, configurations=dict(configurations),
                   start_flag=start_flag)

    def update_port_status(self, statuses: Mapping[str, str], host: str | None = None) -> list[str]:
        result: list[str] = self._call("update_port_status", statuses=dict(statuses), host=host)
        return result

    def metadata_lookup(self, router_id: str | None, network_id: str | None, ip: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._call("metadata_lookup", router_id=router_id, network_id=network_id,
                                                   ip=ip)
        return result
