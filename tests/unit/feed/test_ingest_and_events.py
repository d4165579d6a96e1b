"""Ingestion checks, envelope building and directory-file parsing (pure)."""

from __future__ import annotations

import uuid

import pytest
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import InvalidArgument
from services.feed import events, ingest
from services.feed.config import FeedSettings
from services.feed.domain import Limits
from services.feed.import_directory import DirectoryFileError, parse_directory
from services.feed.ingest_store import pack, unpack
from services.feed.server import limits_from

NOW_MS = 1_700_000_000_000


def item(**kind: object) -> pb.ImportedInteraction:
    return pb.ImportedInteraction(source_id="42", actor_id="e-1", occurred_at=Timestamp(seconds=1_650_000_000), **kind)


class TestIngest:
    def check(self, interaction: pb.ImportedInteraction) -> ingest.CheckedInteraction:
        return ingest.check_interaction(interaction, 3, NOW_MS, 300_000, Limits())

    def test_a_valid_interaction_keeps_its_time_and_payload(self) -> None:
        checked = self.check(item(post_created=ev.PostCreated(post_id="old-1", body_length=9)))
        assert (checked.kind, checked.occurred_ms, checked.source_id) == ("post_created", 1_650_000_000_000, "42")
        assert checked.payload.kind == ev.POST_KIND_POST

    @pytest.mark.parametrize(
        ("interaction", "field"),
        [
            (pb.ImportedInteraction(actor_id="e-1", occurred_at=Timestamp(seconds=1)), "interactions[3].source_id"),
            (item(), "interactions[3].kind"),
            (item(comment_added=ev.CommentAdded(comment_id="c", post_id="p")), "comment_added.post_author_id"),
            (item(reaction_added=ev.ReactionAdded(post_id="p", post_author_id="a")), "reaction_added.reaction"),
            (item(profile_updated=ev.ProfileUpdated(completeness=1.5)), "profile_updated.completeness"),
            (item(post_created=ev.PostCreated(post_id="p", body_length=-1)), "post_created.body_length"),
            (item(post_created=ev.PostCreated(post_id="p", tags=[f"t{i}" for i in range(11)])), "post_created.tags"),
            (item(post_created=ev.PostCreated(post_id="p" * 201)), "post_created.post_id"),
            (item(workshop_attended=ev.WorkshopAttended(session_id="w")), "workshop_attended.kind"),
            (item(feedback_submitted=ev.FeedbackSubmitted(feedback_id="f")), "feedback_submitted.kind"),
        ],
    )
    def test_errors_name_the_field(self, interaction: pb.ImportedInteraction, field: str) -> None:
        with pytest.raises(InvalidArgument) as exc:
            self.check(interaction)
        assert field in exc.value.field

    def test_time_must_be_set_and_not_in_the_future(self) -> None:
        missing = pb.ImportedInteraction(source_id="1", actor_id="e-1", feature_tried=ev.FeatureTried(feature_id="f"))
        with pytest.raises(InvalidArgument) as exc:
            self.check(missing)
        assert exc.value.field == "interactions[3].occurred_at"
        future = item(feature_tried=ev.FeatureTried(feature_id="f"))
        future.occurred_at.FromMilliseconds(NOW_MS + 600_000)
        with pytest.raises(InvalidArgument, match="future"):
            self.check(future)

    @pytest.mark.parametrize(
        ("seconds", "nanos", "field"),
        [
            (0, 1_000_000, "occurred_at.seconds"),  # the worker reads a time in the epoch's first second as missing
            (-5, 0, "occurred_at.seconds"),
            (1_650_000_000, -1, "occurred_at.nanos"),
            (1_650_000_000, 1_000_000_000, "occurred_at.nanos"),
            (253_402_300_800, 0, "occurred_at"),  # year 10000: beyond any Timestamp conversion
            (2**63 - 1, 999_999_999, "occurred_at"),
        ],
    )
    def test_times_the_worker_would_dead_letter_or_cannot_convert_are_refused(
        self, seconds: int, nanos: int, field: str
    ) -> None:
        interaction = item(feature_tried=ev.FeatureTried(feature_id="f"))
        interaction.occurred_at.seconds, interaction.occurred_at.nanos = seconds, nanos
        with pytest.raises(InvalidArgument) as exc:
            self.check(interaction)
        assert exc.value.field == f"interactions[3].{field}"

    @pytest.mark.parametrize(
        ("interaction", "field"),
        [
            (item(feedback_submitted=ev.FeedbackSubmitted(feedback_id="f", kind=99)), "feedback_submitted.kind"),
            (item(workshop_attended=ev.WorkshopAttended(session_id="w", kind=99)), "workshop_attended.kind"),
            (item(post_created=ev.PostCreated(post_id="p", kind=99)), "post_created.kind"),
            (item(survey_answered=ev.SurveyAnswered(survey_id="s", answered_questions=-1)), "answered_questions"),
            (
                item(survey_answered=ev.SurveyAnswered(survey_id="s", answered_questions=2**31 - 1)),
                "answered_questions",
            ),
            (item(feature_tried=ev.FeatureTried(feature_id="f" * 129)), "feature_tried.feature_id"),
            (item(survey_answered=ev.SurveyAnswered(survey_id="has space")), "survey_answered.survey_id"),
            (
                item(comment_added=ev.CommentAdded(comment_id="c", post_id="p", post_author_id="a\x01")),
                "post_author_id",
            ),
            (item(reaction_added=ev.ReactionAdded(post_id="p", post_author_id="e-1", reaction=1)), "post_author_id"),
            (item(answer_accepted=ev.AnswerAccepted(answer_id="a", question_id="q", answer_author_id="e-1")), "author"),
            (item(profile_updated=ev.ProfileUpdated(completeness=float("nan"))), "profile_updated.completeness"),
            (item(profile_updated=ev.ProfileUpdated(changed_fields=["shoe_size"])), "changed_fields[0]"),
            (item(post_created=ev.PostCreated(post_id="p", tags=["two words"])), "post_created.tags[0]"),
            (item(feedback_submitted=ev.FeedbackSubmitted(feedback_id="f", kind=1, topic="t" * 101)), "topic"),
        ],
    )
    def test_an_import_is_as_strict_as_the_per_employee_rpcs(
        self, interaction: pb.ImportedInteraction, field: str
    ) -> None:
        with pytest.raises(InvalidArgument) as exc:
            self.check(interaction)
        assert exc.value.field.startswith("interactions[3].") and field in exc.value.field

    def test_an_import_is_normalised_as_the_api_writes_it(self) -> None:
        post = self.check(item(post_created=ev.PostCreated(post_id=" p ", tags=["#News", "news", "x"])))
        assert (post.payload.post_id, list(post.payload.tags), post.payload.kind) == ("p", ["news", "x"], 1)

    def test_a_source_id_repeated_in_a_batch_counts_once(self) -> None:
        first = ingest.check_interaction(item(feature_tried=ev.FeatureTried(feature_id="a")), 0, NOW_MS, 0, Limits())
        again = ingest.check_interaction(item(feature_tried=ev.FeatureTried(feature_id="b")), 1, NOW_MS, 0, Limits())
        assert ingest.first_occurrences([first, again]) == [first]

    def test_the_envelope_needs_the_actor_and_every_target_author(self) -> None:
        comment = self.check(item(comment_added=ev.CommentAdded(comment_id="c", post_id="p", post_author_id="e-2")))
        filled = self.check(
            item(
                reaction_added=ev.ReactionAdded(
                    post_id="p", post_author_id="e-3", post_author_department_id="hr", reaction=1
                )
            )
        )
        assert ingest.employees_needed([comment, filled]) == {"e-1", "e-2", "e-3"}

        env = ingest.envelope_for("legacy", comment, {"e-1": "sales", "e-2": "it"})
        assert (env.employee_id, env.department_id, env.producer) == ("e-1", "sales", "ingest:legacy")
        assert env.event_id == events.ingest_event_id("legacy", "42")
        assert env.occurred_at.ToMilliseconds() == 1_650_000_000_000
        assert env.comment_added.post_author_department_id == "it"
        assert not comment.payload.post_author_department_id  # the checked item is left as it was
        departments = {"e-1": "sales", "e-3": "it"}
        assert ingest.envelope_for("legacy", filled, departments).reaction_added.post_author_department_id == "hr"

    def test_an_actor_outside_the_directory_is_named_by_position(self) -> None:
        with pytest.raises(InvalidArgument) as exc:
            ingest.envelope_for("legacy", self.check(item(feature_tried=ev.FeatureTried(feature_id="f"))), {})
        assert exc.value.field == "interactions[3].actor_id"

    def test_a_target_author_outside_the_directory_is_refused_not_scored(self) -> None:
        reaction = item(reaction_added=ev.ReactionAdded(post_id="p", post_author_id="ghost", reaction=1))
        with pytest.raises(InvalidArgument, match="'ghost' is not in the directory") as exc:
            ingest.envelope_for("legacy", self.check(reaction), {"e-1": "sales"})
        assert exc.value.field == "interactions[3].reaction_added.post_author_id"

    def test_script_arguments_round_trip(self) -> None:
        values = [b"", b"a", "ä€".encode(), bytes(range(256)) * 3]
        assert unpack(pack(values)) == values
        assert unpack(pack(["e-1", "x"])) == [b"e-1", b"x"]

    def test_batch_bounds(self) -> None:
        with pytest.raises(InvalidArgument):
            ingest.check_batch_size(0, Limits())
        with pytest.raises(InvalidArgument):
            ingest.check_batch_size(501, Limits())
        ingest.check_batch_size(500, Limits())


class TestEvents:
    def test_ingest_event_ids_are_stable_and_distinct(self) -> None:
        assert events.ingest_event_id("legacy", "1") == events.ingest_event_id("legacy", "1")
        assert events.ingest_event_id("legacy", "1") != events.ingest_event_id("legacy", "2")
        assert events.ingest_event_id("a", "b:c") != events.ingest_event_id("a:b", "c")

    @pytest.mark.parametrize("source_id", ["1", "old-post/ä€😀", "x" * 200, ""])
    def test_ingest_event_ids_are_the_uuid5_they_always_were(self, source_id: str) -> None:
        expected = str(uuid.uuid5(events.INGEST_NAMESPACE, f"legacy\x00{source_id}"))
        assert events.ingest_event_id("legacy", source_id) == expected

    def test_envelope_carries_type_time_actor_and_payload(self) -> None:
        env = events.envelope(
            event_id="id-1",
            occurred_ms=NOW_MS,
            producer="feed",
            employee_id="e-1",
            department_id="d",
            payload=ev.FeatureTried(feature_id="x"),
        )
        assert env.type == "catalyst.events.v1.FeatureTried" and env.WhichOneof("payload") == "feature_tried"
        assert env.occurred_at.ToMilliseconds() == NOW_MS and env.feature_tried.feature_id == "x"
        with pytest.raises(ValueError):
            events.envelope(
                event_id="x", occurred_ms=1, producer="p", employee_id="e", department_id="d", payload=Timestamp()
            )

    def test_one_employee_always_maps_to_one_outbox_stream(self) -> None:
        assert {events.outbox_partition("e-1", 16) for _ in range(5)} == {events.outbox_partition("e-1", 16)}
        assert {events.outbox_partition(f"e-{i}", 4) for i in range(100)} == {0, 1, 2, 3}


class TestDirectoryFile:
    def test_csv(self) -> None:
        rows = parse_directory(
            "employee_id,display_name,department_id,is_manager\ne-1,One,d,yes\ne-2,Two,d,\n", "x.csv"
        )
        assert [(r.employee_id, r.is_manager) for r in rows] == [("e-1", True), ("e-2", False)]

    def test_yaml(self) -> None:
        text = "employees:\n  - {employee_id: e-1, display_name: One, department_id: d, is_manager: true}\n"
        assert parse_directory(text, "people.yaml")[0].is_manager is True
        assert (
            parse_directory("- {employee_id: e-2, display_name: T, department_id: d}\n", "p.yml")[0].employee_id
            == "e-2"
        )

    @pytest.mark.parametrize(
        ("text", "name", "message"),
        [
            ("employee_id,display_name\ne,x\n", "x.csv", "header lacks department_id"),
            ("employee_id,display_name,department_id\ne,,d\n", "x.csv", "missing display_name"),
            ("employee_id,display_name,department_id,is_manager\ne,n,d,maybe\n", "x.csv", "is_manager"),
            ("employee_id,display_name,department_id\n", "x.csv", "no employees"),
            ("{a: [", "x.yaml", "not valid YAML"),
            ("just text", "x.yaml", "expected a list"),
            ("", "x.txt", ".csv, .yaml or .yml"),
        ],
    )
    def test_errors_say_what_is_wrong(self, text: str, name: str, message: str) -> None:
        with pytest.raises(DirectoryFileError, match=message.replace(".", r"\.")):
            parse_directory(text, name)


def test_settings_feed_the_domain_limits() -> None:
    settings = FeedSettings(max_body_chars=123, page_size_max=7, page_size_default=5)
    limits = limits_from(settings)
    assert (limits.max_body_chars, limits.page_size_max, limits.page_size_default) == (123, 7, 5)


def test_inconsistent_paging_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="page_size_default"):
        FeedSettings(page_size_default=50, page_size_max=10)
