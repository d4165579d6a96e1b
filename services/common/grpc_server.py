"""gRPC plumbing shared by the services: auth, error mapping and metrics in one interceptor, plus
a runner that serves with health, reflection, /metrics and graceful shutdown on SIGTERM.

Every status a caller gets is chosen here, once for every service: a request body that is no valid message
is INVALID_ARGUMENT (grpc would answer UNKNOWN, which counts as a server error), a dependency that is away
(Redis, Kafka) is UNAVAILABLE with a retry pushback, and only a bug is INTERNAL.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import aiokafka.errors
import grpc
import kafka.errors
import redis.exceptions
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from services.common import errors
from services.common.auth import TokenVerifier, set_current_principal

log = logging.getLogger(__name__)

_STATUS = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

# Infrastructure services any client may call without a token (probes, grpcurl discovery).
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# A dependency that is away for a while (restart, failover, loading its data): the same call may succeed later.
_REDIS_OUTAGES = (
    redis.exceptions.ConnectionError,  # BusyLoadingError too
    redis.exceptions.TimeoutError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.ReadOnlyError,
)
_KAFKA_ERRORS = (kafka.errors.KafkaError, aiokafka.errors.KafkaError)
_KAFKA_TIMEOUTS = (kafka.errors.KafkaTimeoutError, aiokafka.errors.KafkaTimeoutError)
# Sent with every UNAVAILABLE: gRPC retry policies wait this long before the next attempt (gRFC A6).
RETRY_PUSHBACK = (("grpc-retry-pushback-ms", "1000"),)
# The largest request a server takes; gRPC itself answers RESOURCE_EXHAUSTED to a larger one.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def outage_of(exc: BaseException) -> str | None:
    """The dependency an exception says is unreachable ("Redis", "Kafka", "a dependency"), or None."""
    if isinstance(exc, _REDIS_OUTAGES):
        return "Redis"
    if isinstance(exc, _KAFKA_TIMEOUTS) or (isinstance(exc, _KAFKA_ERRORS) and exc.retriable):
        return "Kafka"
    if isinstance(exc, ConnectionError | TimeoutError):
        return "a dependency"
    return None


class Undecodable:
    """What a request deserializer yields for bytes that are no valid request message: the interceptor
    answers INVALID_ARGUMENT with the reason, so a broken client never causes UNKNOWN."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def error(self) -> errors.InvalidArgument:
        return errors.InvalidArgument("request", f"the body is not a valid message of this method ({self.reason})")


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer` returning `Undecodable` instead of raising (bad UTF-8, truncated or random bytes)."""
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return Undecodable(str(exc) or type(exc).__name__)

    return decode


class GrpcMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        labels = ["grpc_service", "grpc_method", "grpc_code"]
        self.handled = Counter(
            "grpc_server_handled", "RPCs completed on the server, by status code", labels, registry=registry
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "Time to handle an RPC",
            ["grpc_service", "grpc_method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls], str(exc)
    dependency = outage_of(exc)
    if dependency is not None:
        return grpc.StatusCode.UNAVAILABLE, f"{dependency} is unavailable right now; retry in a second"
    return grpc.StatusCode.INTERNAL, "internal error; the incident was logged"


async def _refuse_undecodable(request: Any, context: grpc.aio.ServicerContext) -> None:
    if isinstance(request, Undecodable):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request.error()))


async def _checked_requests(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    async for request in requests:
        await _refuse_undecodable(request, context)
        yield request


def _open(kind: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    """A health or reflection method (no token, no metrics) that refuses undecodable requests, in the style
    grpc.aio expects of the original: an async generator, or a coroutine (which may use context.write)."""
    streams = kind.startswith("stream_")

    async def arguments(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if streams:
            return _checked_requests(request, context)
        await _refuse_undecodable(request, context)
        return request

    if inspect.isasyncgenfunction(behavior):

        async def generator(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for item in behavior(await arguments(request, context), context):
                yield item

        return generator

    async def coroutine(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await behavior(await arguments(request, context), context)

    return coroutine


_HANDLER_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _rebuilt(
    handler: grpc.RpcMethodHandler, wrap: Callable[[str, Callable[..., Any]], Callable[..., Any] | None]
) -> grpc.RpcMethodHandler:
    """The handler with a deserializer that never raises and its behaviour wrapped (None: left as it was)."""
    for kind, factory in _HANDLER_FACTORIES.items():
        behavior = getattr(handler, kind)
        if behavior is not None:
            return factory(
                wrap(kind, behavior) or behavior,
                request_deserializer=tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
    return handler


class CatalystInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates the caller, maps errors to status codes and records metrics."""

    def __init__(self, verifier: TokenVerifier, metrics: GrpcMetrics) -> None:
        self._verifier = verifier
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        if details.method.startswith(OPEN_SERVICES):
            return _rebuilt(handler, _open)
        service, _, method = details.method.strip("/").rpartition("/")

        def wrap(kind: str, behavior: Callable[..., Any]) -> Callable[..., Any] | None:
            if kind == "unary_unary":
                return self._wrap_unary(behavior, service, method)
            if kind == "unary_stream":
                return self._wrap_stream(behavior, service, method)
            return None  # client streaming: no Catalyst service has such a method

        return _rebuilt(handler, wrap)

    async def _authenticate(self, context: grpc.aio.ServicerContext, request: Any) -> None:
        """Sets the caller from the token; an undecodable body is refused only after the token is checked."""
        set_current_principal(await self._verifier.authenticate(context.invocation_metadata()))
        if isinstance(request, Undecodable):
            raise request.error()

    async def _fail(self, context: grpc.aio.ServicerContext, exc: BaseException, service: str, method: str) -> None:
        code, message = status_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("unhandled error in %s/%s", service, method, exc_info=exc)
        elif code is grpc.StatusCode.UNAVAILABLE and not isinstance(exc, errors.CatalystError):
            log.warning("%s/%s: dependency unavailable: %r", service, method, exc)
        self._metrics.handled.labels(service, method, code.name).inc()
        pushback = RETRY_PUSHBACK if code is grpc.StatusCode.UNAVAILABLE else ()
        await context.abort(code, message, pushback)

    def _wrap_unary(self, behavior: Callable[..., Awaitable[Any]], service: str, method: str) -> Callable:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                await self._authenticate(context, request)
                response = await behavior(request, context)
            except errors.CatalystError as exc:
                await self._fail(context, exc, service, method)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as exc:
                await self._fail(context, exc, service, method)
            else:
                self._metrics.handled.labels(service, method, "OK").inc()
                return response
            finally:
                self._metrics.latency.labels(service, method).observe(time.perf_counter() - started)

        return wrapper

    def _wrap_stream(self, behavior: Callable[..., Any], service: str, method: str) -> Callable:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                await self._authenticate(context, request)
                async for item in behavior(request, context):
                    yield item
            except errors.CatalystError as exc:
                await self._fail(context, exc, service, method)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as exc:
                await self._fail(context, exc, service, method)
            else:
                self._metrics.handled.labels(service, method, "OK").inc()

        return wrapper


class GrpcService:
    """A configured gRPC server: build it, add servicers, then `run()` until SIGTERM or `stop()`."""

    def __init__(
        self,
        name: str,
        verifier: TokenVerifier,
        host: str,
        port: int,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.name = name
        self.metrics = GrpcMetrics(registry)
        self.server = grpc.aio.server(
            interceptors=[CatalystInterceptor(verifier, self.metrics)],
            options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
        )
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = [health.SERVICE_NAME]
        self._stopped = asyncio.Event()

    def add(self, full_service_name: str, register: Callable[[grpc.aio.Server], None]) -> None:
        register(self.server)
        self._service_names.append(full_service_name)

    async def start(self) -> None:
        reflection.enable_server_reflection([*self._service_names, reflection.SERVICE_NAME], self.server)
        await self.server.start()
        for name in [*self._service_names[1:], ""]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s serving gRPC on port %d", self.name, self.port)

    async def stop(self, grace: float) -> None:
        """Stops taking calls (health NOT_SERVING first, so balancers drain), then finishes in-flight ones."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> None:
    if port:
        start_http_server(port, addr=host, registry=registry)


async def run_until_signalled(
    started: Iterable[Callable[[], Awaitable[None]]],
    stoppers: Iterable[Callable[[], Awaitable[None]]],
) -> None:
    """Starts components in order, waits for SIGTERM/SIGINT, then stops them in the given order."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for start in started:
        await start()
    await stop.wait()
    log.info("shutdown requested")
    for stopper in stoppers:
        try:
            await stopper()
        except Exception:
            log.exception("error during shutdown")
    log.info("stopped")
