"""Staff sign-in: password, then TOTP (enrolled at first sign-in), lockout, revocation."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.helpers import csrf_token
from tests.staff.conftest import PASSWORD, current_code, make_user, sign_in
from tipline import clock
from tipline.accounts import service as accounts
from tipline.accounts.permissions import Role
from tipline.db import transaction


def test_first_sign_in_enrols_totp_then_reaches_the_queue(client: TestClient, ctx) -> None:  # type: ignore[no-untyped-def]
    make_user(ctx, Role.analyst, email="ana@example.org")
    page = client.get("/staff/login")
    step1 = client.post("/staff/login", data={"email": "ANA@example.org", "password": PASSWORD,
                                               "csrf_token": csrf_token(page.text)})
    assert step1.status_code == 200 and str(step1.url).endswith("/staff/2fa")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', step1.text).group(1)  # type: ignore[union-attr]
    # Without the second factor nothing else opens.
    assert client.get("/staff/queue", follow_redirects=False).status_code == 303
    wrong = client.post("/staff/2fa", data={"code": "000000", "csrf_token": csrf_token(step1.text)})
    assert wrong.status_code == 422 and "That code is wrong" in wrong.text
    done = client.post("/staff/2fa", data={"code": current_code(secret), "csrf_token": csrf_token(step1.text)})
    assert done.status_code == 200 and str(done.url).endswith("/staff/queue")
    assert "Queue" in client.get("/staff/queue").text


def test_a_used_code_is_refused(client: TestClient, ctx) -> None:  # type: ignore[no-untyped-def]
    make_user(ctx, Role.analyst, email="bo@example.org")
    assert sign_in(client, "bo@example.org").status_code == 200
    secret = client.__dict__["_totp_secret"]
    used = current_code(secret)
    other = TestClient(client.app)
    page = other.get("/staff/login")
    step1 = other.post("/staff/login", data={"email": "bo@example.org", "password": PASSWORD,
                                             "csrf_token": csrf_token(page.text)})
    assert 'id="totp-secret"' not in step1.text  # enrolled once, never shown again
    replay = other.post("/staff/2fa", data={"code": used, "csrf_token": csrf_token(step1.text)})
    assert replay.status_code == 422
    clock.advance(31)
    fresh = other.post("/staff/2fa", data={"code": current_code(secret), "csrf_token": csrf_token(step1.text)})
    assert str(fresh.url).endswith("/staff/queue")
    other.close()


def test_wrong_password_and_unknown_email_look_the_same_and_lock(client: TestClient, ctx) -> None:  # type: ignore[no-untyped-def]
    make_user(ctx, Role.analyst, email="cy@example.org")
    unknown = sign_in(client, "nobody@example.org", "whatever password")
    wrong = sign_in(client, "cy@example.org", "wrong password!!")
    assert unknown.status_code == wrong.status_code == 403
    assert "The e-mail address or password is wrong." in unknown.text
    assert "The e-mail address or password is wrong." in wrong.text
    for _ in range(4):
        sign_in(client, "cy@example.org", "wrong password!!")
    locked = sign_in(client, "cy@example.org")  # even the right password
    assert locked.status_code == 429 and "locked for 15 minutes" in locked.text
    clock.advance(16 * 60)
    assert sign_in(client, "cy@example.org").status_code == 200


def test_password_reset_revokes_sessions(staff_client, ctx) -> None:  # type: ignore[no-untyped-def]
    analyst = staff_client(Role.analyst)
    assert analyst.get("/staff/queue").status_code == 200
    with transaction(ctx.sessions) as session:
        user = next(u for u in accounts.list_users(session) if u.email == analyst.__dict__["staff_email"])
        accounts.reset_password(session, user, "another long password", actor="test")
    assert analyst.get("/staff/queue", follow_redirects=False).status_code == 303


def test_admin_creates_an_officer_account(staff_client, ctx) -> None:  # type: ignore[no-untyped-def]
    from tests.staff.conftest import make_agency

    agency = make_agency(ctx)
    admin = staff_client(Role.admin)
    page = admin.get("/staff/admin/users")
    created = admin.post("/staff/admin/users", data={
        "email": "officer@example.org", "display_name": "Officer Example", "role": "agency_officer",
        "agency_id": str(agency), "password": "a long enough password", "csrf_token": csrf_token(page.text)})
    assert created.status_code == 200 and "Account created" in created.text
    missing_agency = admin.post("/staff/admin/users", data={
        "email": "o2@example.org", "display_name": "O", "role": "agency_officer",
        "agency_id": "", "password": "a long enough password", "csrf_token": csrf_token(page.text)})
    assert missing_agency.status_code == 422 and "must belong to an agency" in missing_agency.text
    analyst = staff_client(Role.analyst)
    assert analyst.get("/staff/admin/users").status_code == 404
