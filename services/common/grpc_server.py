"""gRPC plumbing shared by the services: auth, error mapping and metrics in one interceptor, plus
a runner that serves with health, reflection, /metrics and graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from services.common import errors
from services.common.auth import TokenAuthority, set_current_principal

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
    return grpc.StatusCode.INTERNAL, "internal error; the incident was logged"


class CatalystInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates the caller, maps domain errors to status codes and records metrics."""

    def __init__(self, authority: TokenAuthority, metrics: GrpcMetrics) -> None:
        self._authority = authority
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        service, _, method = details.method.strip("/").rpartition("/")
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, service, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, service, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        set_current_principal(self._authority.from_metadata(context.invocation_metadata()))

    async def _fail(self, context: grpc.aio.ServicerContext, exc: BaseException, service: str, method: str) -> None:
        code, message = status_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("unhandled error in %s/%s", service, method, exc_info=exc)
        self._metrics.handled.labels(service, method, code.name).inc()
        await context.abort(code, message)

    def _wrap_unary(self, behavior: Callable[..., Awaitable[Any]], service: str, method: str) -> Callable:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                self._authenticate(context)
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
                self._authenticate(context)
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
        authority: TokenAuthority,
        host: str,
        port: int,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.name = name
        self.metrics = GrpcMetrics(registry)
        self.server = grpc.aio.server(
            interceptors=[CatalystInterceptor(authority, self.metrics)],
            options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)],
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
