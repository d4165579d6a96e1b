"""Foundation facts every service relies on."""

from __future__ import annotations

from catalyst.events.v1 import envelope_pb2
from google.protobuf.internal import api_implementation

from services.common.settings import CommonSettings
from services.common.topics import load_topics


def test_protobuf_uses_the_fast_upb_backend() -> None:
    assert api_implementation.Type() == "upb"


def test_declared_topics_match_the_design() -> None:
    topics = load_topics()
    assert topics["interactions"].name == "catalyst.interactions.v1"
    assert topics["interactions"].partitions == 6
    assert topics["engagement"].config["cleanup.policy"] == "compact"
    assert topics["recognition"].name == "catalyst.recognition.v1"
    assert topics["deadletter"].name == "catalyst.deadletter.v1"


def test_settings_default_to_the_declared_topics(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("CATALYST_TOPIC_INTERACTIONS", raising=False)
    settings = CommonSettings()
    assert settings.topic_interactions == "catalyst.interactions.v1"
    monkeypatch.setenv("CATALYST_TOPIC_INTERACTIONS", "other")
    assert CommonSettings().topic_interactions == "other"


def test_envelope_names_its_payload_type() -> None:
    env = envelope_pb2.Envelope(event_id="e", employee_id="emp-1")
    env.post_created.post_id = "p1"
    assert env.WhichOneof("payload") == "post_created"
    assert env.post_created.DESCRIPTOR.full_name == "catalyst.events.v1.PostCreated"
