"""The status every service answers with (services/common/grpc_server.py): client mistakes, dependencies that
are away, undecodable bodies, and INTERNAL only for what is left (a bug)."""

from __future__ import annotations

import aiokafka.errors
import grpc
import kafka.errors
import pytest
import redis.exceptions
from catalyst.feed.v1 import feed_pb2

from services.common import errors
from services.common.grpc_server import Undecodable, status_for, tolerant


@pytest.mark.parametrize(
    ("exc", "code", "says"),
    [
        (errors.InvalidArgument("body", "must not be empty"), grpc.StatusCode.INVALID_ARGUMENT, "body: must not"),
        (errors.Unavailable("busy; retry"), grpc.StatusCode.UNAVAILABLE, "busy"),
        (redis.exceptions.ConnectionError("refused"), grpc.StatusCode.UNAVAILABLE, "Redis"),
        (redis.exceptions.BusyLoadingError("LOADING"), grpc.StatusCode.UNAVAILABLE, "Redis"),
        (redis.exceptions.TimeoutError(), grpc.StatusCode.UNAVAILABLE, "Redis"),
        (redis.exceptions.ReadOnlyError("READONLY"), grpc.StatusCode.UNAVAILABLE, "Redis"),
        (kafka.errors.KafkaConnectionError(), grpc.StatusCode.UNAVAILABLE, "Kafka"),
        (aiokafka.errors.KafkaTimeoutError(), grpc.StatusCode.UNAVAILABLE, "Kafka"),
        (aiokafka.errors.NotLeaderForPartitionError(), grpc.StatusCode.UNAVAILABLE, "Kafka"),
        (ConnectionRefusedError(), grpc.StatusCode.UNAVAILABLE, "a dependency"),
        (kafka.errors.MessageSizeTooLargeError(), grpc.StatusCode.INTERNAL, "incident was logged"),
        (redis.exceptions.ResponseError("WRONGTYPE"), grpc.StatusCode.INTERNAL, "incident was logged"),
        (ValueError("a bug"), grpc.StatusCode.INTERNAL, "incident was logged"),
    ],
)
def test_each_error_gets_the_status_a_client_can_act_on(exc: Exception, code: grpc.StatusCode, says: str) -> None:
    got, message = status_for(exc)
    assert got == code and says in message, (got, message)
    assert code != grpc.StatusCode.UNAVAILABLE or isinstance(exc, errors.CatalystError) or "retry" in message


def test_an_undecodable_body_becomes_an_invalid_argument_instead_of_an_exception() -> None:
    decode = tolerant(feed_pb2.CreatePostRequest.FromString)
    assert decode is not None
    assert decode(feed_pb2.CreatePostRequest(body="ok").SerializeToString()).body == "ok"
    undecodable = decode(b"\x12\x02\xff\xfe")
    assert isinstance(undecodable, Undecodable)
    assert status_for(undecodable.error())[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert str(undecodable.error()).startswith("request: the body is not a valid message")
    assert tolerant(None) is None
