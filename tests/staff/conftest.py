"""Staff fixtures: real accounts, real password and TOTP sign-in through the pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import csrf_token
from tipline import clock
from tipline.accounts import service as accounts
from tipline.accounts import totp
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.db import transaction

PASSWORD = "correct horse battery staple"


def make_user(ctx: AppContext, role: Role, *, agency_id: uuid.UUID | None = None,
              email: str | None = None) -> uuid.UUID:
    with transaction(ctx.sessions) as session:
        user = accounts.create_user(
            session, email=email or f"{role.value}-{uuid.uuid4().hex[:6]}@example.org",
            display_name=f"Test {role.value}", role=role, password=PASSWORD,
            agency_id=agency_id, actor="test")
        return user.id


def make_agency(ctx: AppContext, name: str = "Example Police Unit", jurisdictions: tuple[str, ...] = ("GB",),
                kind: str = "police", notify_email: str = "") -> uuid.UUID:
    with transaction(ctx.sessions) as session:
        return accounts.create_agency(session, name=name, kind=kind, jurisdictions=list(jurisdictions),
                                      notify_email=notify_email, actor="test").id


def current_code(secret: str) -> str:
    return totp.code_at(secret, totp.step_at(clock.now()))


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/staff/login")
    response = client.post("/staff/login", data={"email": email, "password": password,
                                                  "csrf_token": csrf_token(page.text)})
    if response.status_code != 200 or "/staff/2fa" not in str(response.url):
        return response
    secret_match = re.search(r'id="totp-secret">([A-Z2-7]+)<', response.text)
    secret = secret_match.group(1) if secret_match else client.__dict__.get("_totp_secret", "")
    client.__dict__["_totp_secret"] = secret
    return client.post("/staff/2fa", data={"code": current_code(secret),
                                           "csrf_token": csrf_token(response.text)})


@pytest.fixture
def staff_client(client: TestClient, ctx: AppContext) -> Iterator[Callable[..., TestClient]]:
    """staff_client(Role.analyst) -> a TestClient signed in as a new user with that role."""
    opened: list[TestClient] = []

    def factory(role: Role, *, agency_id: uuid.UUID | None = None) -> TestClient:
        email = f"{role.value}-{uuid.uuid4().hex[:6]}@example.org"
        make_user(ctx, role, agency_id=agency_id, email=email)
        other = TestClient(client.app, base_url="http://testserver")
        opened.append(other)
        response = sign_in(other, email)
        signed_in = response.status_code == 200 or str(response.url).endswith("/staff/cases")
        assert signed_in, response.text[:500]
        other.__dict__["staff_email"] = email
        return other

    yield factory
    for other in opened:
        other.close()
