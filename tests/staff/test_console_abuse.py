"""The staff console under abuse, over real HTTP on both databases: a wrong password or
code, a replayed code, a missing or wrong CSRF token, an expired session, a role without
the right, an account confirming its own clear, a bulk screening with a bad row. Each
gets a clear answer, changes nothing it should not, and is audited where it matters."""

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from safevine.actions import tokens
from safevine.actions.actor import Actor
from safevine.store.records import staff_accounts
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.records.staff_accounts import LoginPolicy
from safevine.store.schema import persons
from tests.canaries import PUBLIC, UNSCREENED
from tests.staff.desk import HIDDEN, PASSWORD, Desk


def test_a_wrong_password_or_code_gets_the_same_answer_and_is_audited(desk: Desk) -> None:
    client = desk.client()
    wrong = desk.password_step(client, "sam", "not the password at all")
    nobody = desk.password_step(desk.client(), "nobody-at-all", PASSWORD)
    assert wrong.status_code == nobody.status_code == 401
    assert (
        "Wrong name, password or code" in wrong.text
        and "Wrong name, password or code" in nobody.text
    )
    assert "sv_staff=" not in wrong.headers.get("set-cookie", "")
    assert desk.password_step(client, "sam", PASSWORD).status_code == 303
    page = client.get("/login/code")
    token = HIDDEN.search(page.text).group(1)  # type: ignore[union-attr]
    bad = client.post("/login/code", data={"code": "000000", "csrf_token": token})
    assert bad.status_code == 401 and "Wrong name, password or code" in bad.text
    # The half session opens nothing.
    assert client.get("/").headers["location"] == "/login/code"
    failures = [a for a in desk.actions() if a[1] == "login_failed"]
    assert [f[2] for f in failures] == [
        "password: bad_password",
        "password: unknown_account",
        "second_factor: bad_totp",
    ]


def test_a_code_is_never_accepted_twice(desk: Desk) -> None:
    code = desk.code("sam")
    first = desk.client()
    assert desk.password_step(first, "sam", PASSWORD).status_code == 303
    token = HIDDEN.search(first.get("/login/code").text).group(1)  # type: ignore[union-attr]
    assert first.post("/login/code", data={"code": code, "csrf_token": token}).status_code == 303
    second = desk.client()
    assert desk.password_step(second, "sam", PASSWORD).status_code == 303
    token = HIDDEN.search(second.get("/login/code").text).group(1)  # type: ignore[union-attr]
    replay = second.post("/login/code", data={"code": code, "csrf_token": token})
    assert replay.status_code == 401
    assert ("sam", "login_failed", "second_factor: replayed_totp") in desk.actions()


def test_a_form_without_its_csrf_token_changes_nothing(desk: Desk) -> None:
    client, token = desk.sign_in("sam")
    with desk.engine.connect() as c:
        who = person_ids_by_a_number(c, [UNSCREENED.a_number])[UNSCREENED.a_number]
    form = {"person": str(who), "decision": "cleared", "reason": "x"}
    for sent in ({**form}, {**form, "csrf_token": "forged"}, {**form, "csrf_token": token[:-1]}):
        answer = client.post("/screening", data=sent)
        assert answer.status_code == 403 and "This form has expired" in answer.text
    with desk.engine.connect() as c:
        state = c.execute(select(persons.c.protection).where(persons.c.id == who)).scalar()
    assert state == "unscreened"
    # Signing out needs the token too: a link elsewhere cannot sign anyone out.
    assert client.post("/logout").status_code == 403
    assert client.get("/").status_code == 200


def test_an_idle_session_ends_and_the_next_page_asks_to_sign_in(desk: Desk) -> None:
    client, _ = desk.sign_in("sam")
    desk.app.state.staff.policy = LoginPolicy(idle=timedelta(seconds=1))  # type: ignore[attr-defined]
    time.sleep(1.5)
    answer = client.get("/")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_a_role_without_the_right_is_refused(desk: Desk) -> None:
    auditor, token = desk.sign_in("ann")
    for path in ("/screening", "/person"):
        refused = auditor.get(path)
        assert refused.status_code == 403 and "Your role does not allow this" in refused.text
    with desk.engine.connect() as c:
        who = person_ids_by_a_number(c, [PUBLIC.a_number])[PUBLIC.a_number]
    protect = auditor.post(f"/person/{who}/protect", data={"reason": "x", "csrf_token": token})
    assert protect.status_code == 403
    assert auditor.get("/reports").status_code == 200


def test_nobody_confirms_their_own_clear(desk: Desk) -> None:
    sue, token = desk.sign_in("sue")
    with desk.engine.connect() as c:
        who = person_ids_by_a_number(c, [PUBLIC.a_number])[PUBLIC.a_number]
    sue.post(f"/person/{who}/protect", data={"reason": "T visa", "csrf_token": token})
    asked = sue.post(f"/person/{who}/clear", data={"reason": "withdrawn", "csrf_token": token})
    assert asked.status_code == 303
    own = sue.post("/clear-requests/1/confirm", data={"csrf_token": token})
    assert own.status_code == 403 and "different person" in own.text
    sam, sam_token = desk.sign_in("sam")
    screener = sam.post("/clear-requests/1/confirm", data={"csrf_token": sam_token})
    assert screener.status_code == 403  # a screener may ask, never confirm
    with desk.engine.connect() as c:
        state = c.execute(select(persons.c.protection).where(persons.c.id == who)).scalar()
    assert state == "protected"


def test_a_bulk_screening_with_a_bad_row_names_it(desk: Desk) -> None:
    client, token = desk.sign_in("sam")
    with desk.engine.connect() as c:
        ids = person_ids_by_a_number(c, [UNSCREENED.a_number, PUBLIC.a_number])
    answer = client.post(
        "/screening",
        data={
            "person": [str(ids[UNSCREENED.a_number]), str(ids[PUBLIC.a_number]), "987654"],
            "decision": "protected",
            "reason": "T visa applicants",
            "csrf_token": token,
        },
    )
    assert answer.status_code == 200
    assert "1 screened." in answer.text
    assert (
        f"{ids[PUBLIC.a_number]}: person {ids[PUBLIC.a_number]} was already screened" in answer.text
    )
    assert "987654: no person 987654" in answer.text
    nothing = client.post(
        "/screening",
        data={"decision": "protected", "reason": "x", "csrf_token": token},
    )
    assert nothing.status_code == 422 and "none were chosen" in nothing.text


def test_two_tokens_of_one_account_are_one_person_for_a_clear(desk: Desk) -> None:
    now = datetime.now(UTC)
    with desk.engine.begin() as c:
        sue = staff_accounts.by_name(c, "sue")
        first, second = (
            tokens.create(c, Actor("cli:test"), name, ["protect"], now, sue)
            for name in ("sue-laptop", "sue-phone")
        )
    body = {"a_number": PUBLIC.a_number, "reason": "T visa"}
    with desk.client() as api:
        for path in ("protect", "clear"):
            answer = api.post(
                f"/api/v1/staff/persons/{path}",
                json=body,
                headers={"Authorization": f"Bearer {first}"},
            )
            assert answer.status_code in (200, 202), answer.text
        request_id = answer.json()["request"]
        again = api.post(
            f"/api/v1/staff/clear-requests/{request_id}/confirm",
            headers={"Authorization": f"Bearer {second}"},
        )
    assert again.status_code == 403 and "different person" in again.json()["error"]
    assert ("sue", "clear_requested") in [(a, b) for a, b, _ in desk.actions()]
