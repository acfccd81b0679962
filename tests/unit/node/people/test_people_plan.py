"""The OneRoster reader and the import planner: what school IT sees from
``parta node people import --dry-run`` (bad rows with file and line, the plan, an empty plan
on a re-run)."""

from __future__ import annotations

import pytest

from node.people.oneroster import RosterError, read_roster
from node.people.plan import State, make_plan, summary
from people_support import append_line, edit, sample_copy


def _state_after(roster) -> State:
    """The node's record once ``roster`` has been applied."""
    return State(
        orgs=dict(roster.orgs),
        people={sid: p for sid, p in roster.people.items() if p.active},
        classes={sid: k for sid, k in roster.classes.items() if k.active},
        enrollments=dict(roster.enrollments),
        guardians=set(roster.guardians),
        has_school_rooms=True,
    )


def _problems(export) -> list[str]:
    with pytest.raises(RosterError) as info:
        read_roster(str(export))
    return [str(p) for p in info.value.problems]


def test_sample_first_import_plans_everything(tmp_path):
    roster = read_roster(str(sample_copy(tmp_path)))
    plan = make_plan(State(), roster)
    assert len(plan.create) == 9
    assert {p.role for p in plan.create} == {"director", "teacher", "pupil", "parent"}
    assert plan.school_rooms_create == ["space", "staff", "announcements"]
    assert len(plan.rooms_to_create) == 3 + 2 * 2
    assert len(plan.enroll) == 6
    assert plan.guardians_add == [
        ("parent-1", "pupil-1"),
        ("parent-1", "pupil-3"),
        ("parent-2", "pupil-2"),
    ]
    text = summary(plan, first=2)
    assert "Accounts to create: 9" in text
    assert "... and 7 more" in text


def test_same_files_again_plan_nothing(tmp_path):
    roster = read_roster(str(sample_copy(tmp_path)))
    plan = make_plan(_state_after(roster), roster)
    assert plan.is_empty()
    assert summary(plan).startswith("Nothing to change")


def test_changes_are_planned_as_updates_leavers_and_moves(tmp_path):
    export = sample_copy(tmp_path)
    before = read_roster(str(export))

    def users(rows):
        rows = [r for r in rows if r["sourcedId"] != "pupil-4"]  # left the school
        for r in rows:
            if r["sourcedId"] == "pupil-1":
                r["givenName"] = "Alexandra"
        return rows

    def enrollments(rows):
        rows = [r for r in rows if r["userSourcedId"] != "pupil-4"]
        for r in rows:
            if r["userSourcedId"] == "pupil-2":
                r["classSourcedId"] = "class-5b"  # moved class
        return rows

    edit(export, "users", users)
    edit(export, "enrollments", enrollments)
    plan = make_plan(_state_after(before), read_roster(str(export)))
    assert [u.describe() for u in plan.update] == [
        "pupil-1: name 'Sasha Kuznetsov' -> 'Alexandra Kuznetsov'"
    ]
    assert [p.sourced_id for p in plan.deactivate] == ["pupil-4"]
    assert plan.unenroll == [("class-5a", "pupil-2"), ("class-5b", "pupil-4")]
    assert plan.enroll == [("class-5b", "pupil-2", "student")]
    assert plan.create == [] and plan.classes_create == []


def test_tobedeleted_and_disabled_users_are_deactivated(tmp_path):
    export = sample_copy(tmp_path)
    before = read_roster(str(export))

    def users(rows):
        for r in rows:
            if r["sourcedId"] == "staff-t2":
                r["status"] = "tobedeleted"
            if r["sourcedId"] == "parent-2":
                r["enabledUser"] = "false"
        return rows

    edit(export, "users", users)
    plan = make_plan(_state_after(before), read_roster(str(export)))
    assert sorted(p.sourced_id for p in plan.deactivate) == ["parent-2", "staff-t2"]
    assert ("class-5b", "staff-t2") in plan.unenroll
    assert plan.guardians_remove == [("parent-2", "pupil-2")]


def test_a_closed_class_is_planned_as_closed(tmp_path):
    export = sample_copy(tmp_path)
    before = read_roster(str(export))
    edit(export, "classes", lambda rows: [r for r in rows if r["sourcedId"] != "class-5b"])
    edit(export, "enrollments", lambda rows: [r for r in rows if r["classSourcedId"] != "class-5b"])
    plan = make_plan(_state_after(before), read_roster(str(export)))
    assert [k.sourced_id for k in plan.classes_close] == ["class-5b"]
    assert len(plan.unenroll) == 3


def test_a_deactivated_person_back_in_the_file_is_not_reopened(tmp_path):
    roster = read_roster(str(sample_copy(tmp_path)))
    state = _state_after(roster)
    p = state.people["pupil-4"]
    state.people["pupil-4"] = type(p)(p.sourced_id, p.role, p.given_name, p.family_name, False)
    plan = make_plan(state, roster)
    assert [q.sourced_id for q in plan.kept_deactivated] == ["pupil-4"]
    assert plan.create == [] and plan.deactivate == []
    assert ("class-5b", "pupil-4", "student") not in plan.enroll


def test_bad_rows_are_reported_with_file_and_line(tmp_path):
    export = sample_copy(tmp_path)
    append_line(export, "users", "pupil-9,,2026-09-01,true,p9,Ivan,Orlov,wizard,,org-school")
    append_line(export, "users", "pupil-1,,2026-09-01,true,p1,Dup,Licate,student,,org-school")
    append_line(export, "users", "pupil-8,,2026-09-01,true,p8,Olga,Orlova,student,nobody,org-s")
    append_line(export, "enrollments", "enr-9,,2026-09-01,class-9z,org-school,pupil-1,student,,,")
    append_line(export, "enrollments", "enr-8,,2026-09-01,class-5a,org-school,ghost,student,,,")
    append_line(export, "classes", "class-x,,2026-09-01,6C,06,course-5,6C,homeroom,,org-zz,,,,")
    problems = _problems(export)
    assert "users.csv:11: unknown role 'wizard'" in problems
    assert "users.csv:12: duplicate sourcedId 'pupil-1'" in problems
    assert "users.csv:13: agentSourcedIds names 'nobody', not in users.csv" in problems
    assert "classes.csv:4: schoolSourcedId 'org-zz' is not in orgs.csv" in problems
    assert "enrollments.csv:8: classSourcedId 'class-9z' is not in classes.csv" in problems
    assert "enrollments.csv:9: userSourcedId 'ghost' is not in users.csv" in problems


def test_structural_problems(tmp_path):
    export = sample_copy(tmp_path)
    edit(
        export,
        "manifest",
        lambda rows: [
            {**r, "value": "delta"} if r["propertyName"] == "file.users" else r for r in rows
        ],
    )
    (export / "classes.csv").write_text("sourcedId,title\nc1,5A\n", encoding="utf-8")
    (export / "orgs.csv").write_bytes(b"sourcedId,name,type\nx,\xff\xfe,school\n")
    problems = _problems(export)
    assert "manifest.csv:0: file.users must be 'bulk' (is delta)" in problems
    edit(
        export,
        "manifest",
        lambda rows: [
            {**r, "value": "bulk"} if r["propertyName"] == "file.users" else r for r in rows
        ],
    )
    problems = _problems(export)
    assert any(p.startswith("orgs.csv:0: not UTF-8") for p in problems)
    assert "classes.csv:1: missing column(s): schoolSourcedId" in problems


def test_roles_csv_gives_roles_when_users_has_none(tmp_path):
    export = sample_copy(tmp_path)
    roles = {"staff-t1": "teacher", "pupil-1": "student"}

    def users(rows):
        for r in rows:
            r["role"] = "" if r["sourcedId"] in roles else r["role"]
        return rows

    edit(export, "users", users)
    lines = ["sourcedId,status,dateLastModified,userSourcedId,roleType,role,orgSourcedId"]
    lines += [f"r-{u},,2026-09-01,{u},primary,{r},org-school" for u, r in roles.items()]
    (export / "roles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    edit(
        export,
        "manifest",
        lambda rows: [
            {**r, "value": "bulk"} if r["propertyName"] == "file.roles" else r for r in rows
        ],
    )
    roster = read_roster(str(export))
    assert roster.people["staff-t1"].role == "teacher"
    assert roster.people["pupil-1"].role == "pupil"
