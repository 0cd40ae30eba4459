"""Staff accounts: passwords, the second factor, sessions, lockout, agencies."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tipline import clock, crypto
from tipline.accounts import passwords, totp
from tipline.accounts.models import Agency, StaffSession, User
from tipline.accounts.permissions import Permission, Role, has_permission
from tipline.audit import service as audit
from tipline.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from tipline.i18n import _

MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
PENDING_MFA_LIFETIME = timedelta(minutes=10)
TOTP_CONTEXT = b"tipline:totp"


@dataclass(frozen=True)
class StaffUser:
    """The signed-in person, detached from the database session."""

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    agency_id: uuid.UUID | None

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"

    def can(self, permission: Permission) -> bool:
        return has_permission(self.role, permission)

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            # Same answer as a missing page: nobody learns what exists.
            raise NotFound(_("There is no page at this address."))


def as_staff(user: User) -> StaffUser:
    return StaffUser(user.id, user.email, user.display_name, user.role, user.agency_id)


def _normal_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session, *, email: str, display_name: str, role: Role, password: str,
    agency_id: uuid.UUID | None = None, actor: str,
) -> User:
    address = _normal_email(email)
    if "@" not in address or len(address) > 320:
        raise InvalidInput(_("Enter a valid e-mail address."), field="email")
    if len(password) < passwords.MIN_LENGTH:
        raise InvalidInput(_("The password must have at least %(n)s characters.") % {"n": passwords.MIN_LENGTH}, field="password")
    if role == Role.agency_officer and agency_id is None:
        raise InvalidInput(_("An agency officer must belong to an agency."), field="agency_id")
    if role != Role.agency_officer and agency_id is not None:
        raise InvalidInput(_("Only agency officers belong to an agency."), field="agency_id")
    if agency_id is not None and session.get(Agency, agency_id) is None:
        raise InvalidInput(_("No such agency."), field="agency_id")
    if session.execute(select(User.id).where(User.email == address)).first():
        raise Conflict(_("An account with this e-mail address already exists."), field="email")
    user = User(email=address, display_name=display_name.strip()[:120] or address, role=role,
                agency_id=agency_id, password_hash=passwords.hash_password(password),
                created_at=clock.now())
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", object_type="user",
                 object_id=str(user.id), details={"email": address, "role": role.value})
    return user


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_("No such account."))
    return user


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.email)).scalars())


def count_admins(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(User).where(User.role == Role.admin)).scalar_one())


# --- signing in ----------------------------------------------------------------------------

def authenticate(session: Session, *, email: str, password: str) -> User:
    """Password step. Wrong password and unknown e-mail give the same answer."""
    user = session.execute(select(User).where(User.email == _normal_email(email))).scalar_one_or_none()
    now = clock.now()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        passwords.verify_password(None, password)
        raise RateLimited(_("Too many failed attempts: this account is locked for 15 minutes."))
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        if user is not None:
            user.failed_attempts += 1
            if user.failed_attempts >= MAX_FAILED_ATTEMPTS:
                user.locked_until = now + LOCKOUT
                user.failed_attempts = 0
                audit.record(session, actor="system", action="user.locked", object_type="user",
                             object_id=str(user.id))
        raise PermissionDenied(_("The e-mail address or password is wrong."))
    user.failed_attempts = 0
    user.locked_until = None
    return user


def start_session(session: Session, user: User) -> str:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    session.add(StaffSession(token_digest=crypto.token_digest(token), user_id=user.id,
                             created_at=now, expires_at=now + PENDING_MFA_LIFETIME,
                             mfa_passed=False))
    return token


@dataclass(frozen=True)
class SessionState:
    user: User
    mfa_passed: bool


def session_state(session: Session, token: str | None) -> SessionState | None:
    if not token:
        return None
    row = session.get(StaffSession, crypto.token_digest(token))
    if row is None or row.expires_at < clock.now():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return SessionState(user, row.mfa_passed)


def end_session(session: Session, token: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_digest == crypto.token_digest(token)))


def revoke_sessions(session: Session, user_id: uuid.UUID) -> None:
    session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))


# --- the second factor -------------------------------------------------------------------

def _totp_key(keys: crypto.Keys) -> bytes:
    return keys.derive("totp")


def enrolment_secret(session: Session, keys: crypto.Keys, user: User) -> str:
    """The secret to enrol, created on first use and kept (sealed) until confirmed."""
    if user.totp_enrolled:
        raise Conflict(_("Two-step sign-in is already set up for this account."))
    if user.totp_secret_sealed is None:
        user.totp_secret_sealed = crypto.seal(_totp_key(keys), totp.new_secret().encode(), TOTP_CONTEXT)
    return crypto.unseal(_totp_key(keys), user.totp_secret_sealed, TOTP_CONTEXT).decode()


def check_second_factor(session: Session, keys: crypto.Keys, user: User, code: str, token: str) -> None:
    """Verify a code (enrolling on first success) and upgrade the session."""
    if user.totp_secret_sealed is None:
        raise InvalidInput(_("Set up two-step sign-in first."), field="code")
    secret = crypto.unseal(_totp_key(keys), user.totp_secret_sealed, TOTP_CONTEXT).decode()
    step = totp.matching_step(secret, code, clock.now(), user.totp_last_step)
    if step is None:
        user.failed_attempts += 1
        if user.failed_attempts >= MAX_FAILED_ATTEMPTS:
            user.locked_until = clock.now() + LOCKOUT
            user.failed_attempts = 0
            revoke_sessions(session, user.id)
        raise InvalidInput(_("That code is wrong or was already used. Wait for a new one."), field="code")
    user.totp_last_step = step
    user.failed_attempts = 0
    first = not user.totp_enrolled
    user.totp_enrolled = True
    row = session.get(StaffSession, crypto.token_digest(token))
    if row is None:
        raise PermissionDenied(_("Your sign-in expired. Please start again."))
    row.mfa_passed = True
    row.expires_at = clock.now() + SESSION_LIFETIME
    audit.record(session, actor=f"staff:{user.id}", action="user.signin", object_type="user",
                 object_id=str(user.id), details={"enrolled": first})


def reset_password(session: Session, user: User, new_password: str, *, actor: str) -> None:
    if len(new_password) < passwords.MIN_LENGTH:
        raise InvalidInput(_("The password must have at least %(n)s characters.") % {"n": passwords.MIN_LENGTH}, field="password")
    user.password_hash = passwords.hash_password(new_password)
    revoke_sessions(session, user.id)
    audit.record(session, actor=actor, action="user.password_reset", object_type="user", object_id=str(user.id))


def reset_second_factor(session: Session, user: User, *, actor: str) -> None:
    user.totp_secret_sealed = None
    user.totp_enrolled = False
    user.totp_last_step = 0
    revoke_sessions(session, user.id)
    audit.record(session, actor=actor, action="user.2fa_reset", object_type="user", object_id=str(user.id))


def set_active(session: Session, user: User, active: bool, *, actor: str) -> None:
    if not active and user.role == Role.admin and count_admins(session) <= 1:
        raise Conflict(_("The last administrator cannot be deactivated."))
    user.active = active
    if not active:
        revoke_sessions(session, user.id)
    audit.record(session, actor=actor, action="user.activate" if active else "user.deactivate",
                 object_type="user", object_id=str(user.id))


# --- agencies -----------------------------------------------------------------------------

def create_agency(
    session: Session, *, name: str, kind: str, jurisdictions: list[str], notify_email: str = "",
    accepts_anonymous: bool | None = None, directory_id: str | None = None, actor: str,
) -> Agency:
    if not name.strip():
        raise InvalidInput(_("The agency needs a name."), field="name")
    codes = [code.strip().upper() for code in jurisdictions if code.strip()]
    if not codes:
        raise InvalidInput(_("Name at least one country or region the agency covers (e.g. GB or US-CA)."), field="jurisdictions")
    agency = Agency(name=name.strip()[:300], kind=kind, jurisdictions=codes,
                    notify_email=notify_email.strip(), accepts_anonymous=accepts_anonymous,
                    directory_id=directory_id, created_at=clock.now())
    session.add(agency)
    session.flush()
    audit.record(session, actor=actor, action="agency.create", object_type="agency",
                 object_id=str(agency.id), details={"name": agency.name, "jurisdictions": codes})
    return agency


def list_agencies(session: Session, *, active_only: bool = False) -> list[Agency]:
    query = select(Agency).order_by(Agency.name)
    if active_only:
        query = query.where(Agency.active.is_(True))
    return list(session.execute(query).scalars())


def get_agency(session: Session, agency_id: uuid.UUID) -> Agency:
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(_("No such agency."))
    return agency
