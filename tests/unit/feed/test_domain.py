"""Pure feed rules: validation, completeness, permissions, ids and paging (no I/O)."""

from __future__ import annotations

import pytest
from catalyst.events.v1 import interactions_pb2 as ev

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.feed import domain
from services.feed.domain import Comment, Employee, Limits, Post, Profile

LIMITS = Limits(max_body_chars=50, max_comment_chars=20, max_tags=3, max_tag_chars=8, page_size_max=10)


def post(author: str = "a", kind: int = ev.POST_KIND_POST, accepted: str = "") -> Post:
    return Post(
        post_id="p0000000000001deadbeef",
        author_id=author,
        author_department_id="d",
        kind=kind,
        title="t",
        body="b",
        tags=(),
        target_department_id="",
        created_ms=1,
        accepted_answer_id=accepted,
    )


def answer(author: str = "b", post_id: str = "p0000000000001deadbeef", is_answer: bool = True) -> Comment:
    return Comment("c0000000000002cafebabe", post_id, author, "yes", is_answer, 2)


def principal(subject: str, *roles: Role) -> Principal:
    return Principal(subject, frozenset(roles or (Role.EMPLOYEE,)))


def field_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.field


class TestPostDrafts:
    def test_body_is_required_and_trimmed(self) -> None:
        with pytest.raises(InvalidArgument) as exc:
            domain.check_post_draft(ev.POST_KIND_POST, "", "   ", [], "", LIMITS)
        assert field_of(exc) == "body" and "must not be empty" in str(exc.value)
        assert domain.check_post_draft(ev.POST_KIND_POST, "", "  hi  ", [], "", LIMITS).body == "hi"

    def test_oversized_body_names_the_limit(self) -> None:
        with pytest.raises(InvalidArgument) as exc:
            domain.check_post_draft(ev.POST_KIND_POST, "", "x" * 51, [], "", LIMITS)
        assert field_of(exc) == "body" and "at most 50" in str(exc.value)

    def test_a_question_needs_a_title_a_post_does_not(self) -> None:
        with pytest.raises(InvalidArgument) as exc:
            domain.check_post_draft(ev.POST_KIND_QUESTION, " ", "body", [], "", LIMITS)
        assert field_of(exc) == "title"
        assert domain.check_post_draft(ev.POST_KIND_POST, "", "body", [], "", LIMITS).title == ""

    def test_tags_are_normalised_deduplicated_and_bounded(self) -> None:
        assert domain.check_tags(["News", "#news", " it "], LIMITS) == ("news", "it")
        with pytest.raises(InvalidArgument) as exc:
            domain.check_tags(["a", "b", "c", "d"], LIMITS)
        assert field_of(exc) == "tags"
        with pytest.raises(InvalidArgument) as exc:
            domain.check_tags(["ok", "two words"], LIMITS)
        assert field_of(exc) == "tags[1]"
        with pytest.raises(InvalidArgument) as exc:
            domain.check_tags(["waytoolongtag"], LIMITS)
        assert field_of(exc) == "tags[0]"

    def test_target_department_must_be_an_id(self) -> None:
        with pytest.raises(InvalidArgument) as exc:
            domain.check_post_draft(ev.POST_KIND_POST, "", "b", [], "sales team", LIMITS)
        assert field_of(exc) == "target_department_id"


class TestIds:
    def test_ids_sort_by_creation_time(self) -> None:
        earlier = domain.make_id("p", 999, "ffffffff")
        later = domain.make_id("p", 1000, "00000000")
        assert earlier < later and len(earlier) == 22

    def test_unknown_post_id_shapes_are_not_found_and_empty_is_invalid(self) -> None:
        with pytest.raises(NotFound):
            domain.check_post_id("post_id", "hello")
        with pytest.raises(InvalidArgument):
            domain.check_post_id("post_id", "")
        assert domain.check_post_id("post_id", " p0000000000001deadbeef ") == "p0000000000001deadbeef"

    def test_directory_ids(self) -> None:
        assert domain.check_id("employee_id", "e-1@corp", LIMITS) == "e-1@corp"
        for bad in ("-x", "a b", "x" * 65):
            with pytest.raises(InvalidArgument):
                domain.check_id("employee_id", bad, LIMITS)
        assert domain.check_id("department_id", "", LIMITS, required=False) == ""


class TestPaging:
    def test_default_and_maximum_page_size(self) -> None:
        assert domain.check_page(0, "", LIMITS) == (LIMITS.page_size_default, "")
        with pytest.raises(InvalidArgument) as exc:
            domain.check_page(11, "", LIMITS)
        assert field_of(exc) == "page_size"
        with pytest.raises(InvalidArgument):
            domain.check_page(-1, "", LIMITS)

    def test_page_tokens_round_trip_and_reject_forgeries(self) -> None:
        token = domain.page_token_after("p0000000000001deadbeef")
        assert domain.check_page(5, token, LIMITS) == (5, "p0000000000001deadbeef")
        for forged in ("garbage!", domain.page_token_after("feed:post:x")):
            with pytest.raises(InvalidArgument) as exc:
                domain.check_page(5, forged, LIMITS)
            assert field_of(exc) == "page_token"


class TestPermissions:
    def test_only_the_author_edits(self) -> None:
        domain.ensure_can_edit(post("a"), "a")
        with pytest.raises(PermissionDenied):
            domain.ensure_can_edit(post("a"), "b")

    def test_author_or_programme_owner_deletes(self) -> None:
        domain.ensure_can_delete(post("a"), principal("a"))
        domain.ensure_can_delete(post("a"), principal("comms", Role.PROGRAMME_OWNER))
        with pytest.raises(PermissionDenied):
            domain.ensure_can_delete(post("a"), principal("b"))

    def test_nobody_reacts_to_their_own_post(self) -> None:
        domain.ensure_can_react("a", "b")
        with pytest.raises(InvalidArgument) as exc:
            domain.ensure_can_react("a", "a")
        assert field_of(exc) == "post_id"

    def test_answers_belong_to_questions(self) -> None:
        domain.ensure_question(post(kind=ev.POST_KIND_QUESTION))
        with pytest.raises(InvalidArgument) as exc:
            domain.ensure_question(post())
        assert field_of(exc) == "question_id" and "not a question" in str(exc.value)

    def test_unregistered_actors_are_told_to_get_imported(self) -> None:
        with pytest.raises(FailedPrecondition) as exc:
            domain.require_registered(None, "e-9")
        assert "directory" in str(exc.value)
        emp = Employee("e-9", "Nine", "d")
        assert domain.require_registered(emp, "e-9") is emp

    def test_reactions_must_be_a_known_kind(self) -> None:
        assert domain.check_reaction(ev.REACTION_KIND_LIKE) == "LIKE"
        for bad in (ev.REACTION_KIND_UNSPECIFIED, 42):
            with pytest.raises(InvalidArgument):
                domain.check_reaction(bad)


class TestAcceptance:
    question = post("asker", ev.POST_KIND_QUESTION)

    def test_the_asker_accepts_someone_elses_answer(self) -> None:
        assert domain.ensure_can_accept(self.question, answer("helper"), "c0000000000002cafebabe", "asker")

    def test_only_the_asker(self) -> None:
        with pytest.raises(InvalidArgument) as exc:
            domain.ensure_can_accept(self.question, answer(), "c", "someone")
        assert field_of(exc) == "question_id"

    def test_not_ones_own_answer(self) -> None:
        with pytest.raises(InvalidArgument) as exc:
            domain.ensure_can_accept(self.question, answer("asker"), "c", "asker")
        assert field_of(exc) == "answer_id"

    @pytest.mark.parametrize(
        "candidate",
        [None, answer(is_answer=False), answer(post_id="p0000000000009deadbeef")],
        ids=["missing", "plain comment", "other question"],
    )
    def test_it_must_be_an_answer_to_this_question(self, candidate: Comment | None) -> None:
        with pytest.raises(InvalidArgument) as exc:
            domain.ensure_can_accept(self.question, candidate, "c", "asker")
        assert field_of(exc) == "answer_id"

    def test_accepting_again_is_a_no_op_and_a_second_answer_is_refused(self) -> None:
        done = post("asker", ev.POST_KIND_QUESTION, accepted="c0000000000002cafebabe")
        assert domain.ensure_can_accept(done, answer(), "c0000000000002cafebabe", "asker") is False
        other = Comment("c0000000000003cafebabe", done.post_id, "b", "x", True, 3)
        with pytest.raises(FailedPrecondition):
            domain.ensure_can_accept(done, other, other.comment_id, "asker")


class TestProfile:
    def test_completeness_is_the_share_of_filled_fields(self) -> None:
        assert domain.completeness(Profile()) == 0.0
        assert domain.completeness(Profile(job_title="x", skills=("a",), phone="+49 1")) == 0.5
        full = Profile("t", "l", "a", ("s",), "https://x/p.png", "+49 30 1")
        assert domain.completeness(full) == 1.0

    def test_validation_names_the_field(self) -> None:
        cases = {
            "photo_url": {"photo_url": "javascript:alert(1)"},
            "phone": {"phone": "call me"},
            "about": {"about": "x" * 2001},
            "skills[1]": {"skills": ["ok", ""]},
            "job_title": {"job_title": "x" * 101},
        }
        for name, overrides in cases.items():
            args = {"job_title": "", "location": "", "about": "", "skills": [], "photo_url": "", "phone": ""}
            args.update(overrides)
            with pytest.raises(InvalidArgument) as exc:
                domain.check_profile(**args, limits=Limits())
            assert field_of(exc) == name

    def test_skills_are_deduplicated_case_insensitively_and_bounded(self) -> None:
        profile = domain.check_profile("", "", "", ["Python", "python", "Go"], "", "", Limits())
        assert profile.skills == ("Python", "Go")
        with pytest.raises(InvalidArgument) as exc:
            domain.check_profile("", "", "", [f"s{i}" for i in range(31)], "", "", Limits())
        assert field_of(exc) == "skills"

    def test_an_update_without_changes_is_no_update(self) -> None:
        before = Profile(job_title="x", updated_ms=5)
        same, changes = domain.updated_profile(before, Profile(job_title="x"), 99)
        assert (same, changes) == (before, [])
        after, changes = domain.updated_profile(before, Profile(job_title="y", phone="+1 555"), 99)
        assert changes == ["job_title", "phone"] and after.updated_ms == 99


class TestDirectoryAndSignals:
    def test_employee_rows(self) -> None:
        rows = domain.check_employees([("e-1", " One ", "d1", True)], LIMITS)
        assert rows == [Employee("e-1", "One", "d1", True)]
        with pytest.raises(InvalidArgument) as exc:
            domain.check_employees([], LIMITS)
        assert field_of(exc) == "employees"
        with pytest.raises(InvalidArgument) as exc:
            domain.check_employees([("e-1", "A", "d", False), ("e-1", "B", "d", False)], LIMITS)
        assert field_of(exc) == "employees[1].employee_id"
        with pytest.raises(InvalidArgument) as exc:
            domain.check_employees([("e-1", "", "d", False)], LIMITS)
        assert field_of(exc) == "employees[0].display_name"
        with pytest.raises(InvalidArgument):
            domain.check_employees([("e", "n", "d", False)] * 2000, LIMITS)

    def test_feedback_survey_and_session_checks(self) -> None:
        assert domain.check_feedback(ev.FEEDBACK_KIND_SUGGESTION, " ux ", "idea", LIMITS) == (2, "ux", "idea")
        with pytest.raises(InvalidArgument) as exc:
            domain.check_feedback(ev.FEEDBACK_KIND_UNSPECIFIED, "ux", "idea", LIMITS)
        assert field_of(exc) == "kind"
        with pytest.raises(InvalidArgument) as exc:
            domain.check_feedback(ev.FEEDBACK_KIND_FEEDBACK, "", "idea", LIMITS)
        assert field_of(exc) == "topic"
        assert domain.check_survey("s-1", 3, LIMITS) == "s-1"
        with pytest.raises(InvalidArgument) as exc:
            domain.check_survey("s-1", 100_000, LIMITS)
        assert field_of(exc) == "answered_questions"
        assert domain.check_session("w-1", ev.SESSION_KIND_WORKSHOP, LIMITS) == "w-1"
        with pytest.raises(InvalidArgument) as exc:
            domain.check_session("w-1", ev.SESSION_KIND_UNSPECIFIED, LIMITS)
        assert field_of(exc) == "kind"
