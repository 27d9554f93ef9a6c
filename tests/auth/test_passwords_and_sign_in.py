"""Passwords (argon2id, length, common list), lock-out, session expiry and scoped tokens, on both backends."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from importlib import resources

import pytest
import yaml
from casekit import PASSWORD, T0, make_user
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ore.auth import SYSTEM
from ore.auth.passwords import WeakPassword, check_password, hash_password, verify_password
from ore.auth.policy import load_policy
from ore.auth.principal import AccessDenied
from ore.auth.sessions import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    SignInFailed,
    create_token,
    end_session,
    open_session,
    resume_session,
    revoke_token,
    sign_in,
    token_principal,
)
from ore.auth.users import add_user, ensure_first_admin, set_disabled, unlock
from ore.errors import OreError
from ore.store.access import ApiToken, LoginSession, User


def test_hashes_are_argon2id_and_never_the_password() -> None:
    h = hash_password(PASSWORD)
    assert h.startswith("$argon2id$") and PASSWORD not in h
    assert verify_password(h, PASSWORD) and not verify_password(h, PASSWORD + "x")
    assert not verify_password("not a hash", PASSWORD)


@pytest.mark.parametrize(("password", "why"), [("short1!", "at least 8"), ("password123", "common"),
                                               ("Password1", "common"), ("xx.jones.xx", "user name")])
def test_weak_passwords_are_refused_naming_the_rule(password: str, why: str) -> None:
    with pytest.raises(WeakPassword, match=why):
        check_password(password, "jones")


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=0, max_size=7))
def test_any_password_under_eight_characters_is_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password)


def test_first_run_makes_one_admin_with_a_one_time_password(store) -> None:
    with store.session() as s:
        first = ensure_first_admin(s)
    assert first is not None and len(first.password) >= 16
    with store.session() as s:
        assert ensure_first_admin(s) is None  # only once
        admin = s.scalar(select(User).where(User.username == "admin"))
        assert admin.must_change_password and first.password not in admin.password_hash
    signed = sign_in(store, "admin", first.password)
    assert signed.must_change_password and signed.principal.can("users.manage")


def test_five_failures_in_fifteen_minutes_lock_the_account_until_an_admin_unlocks(store) -> None:
    make_user(store, "dc.ali", "investigator", "MPS")
    for i in range(4):
        with pytest.raises(SignInFailed, match="wrong user name or password"):
            sign_in(store, "dc.ali", "wrong password", now=T0 + timedelta(minutes=3 * i))
    with pytest.raises(SignInFailed, match="now locked"):
        sign_in(store, "dc.ali", "wrong password", now=T0 + timedelta(minutes=14))
    with pytest.raises(SignInFailed, match="locked"):  # even the right password, now
        sign_in(store, "dc.ali", PASSWORD, now=T0 + timedelta(minutes=15))
    with store.session() as s:
        unlock(s, SYSTEM, "dc.ali")
    assert sign_in(store, "dc.ali", PASSWORD, now=T0 + timedelta(minutes=16)).principal.force == "MPS"


def test_five_failures_at_once_lock_the_account(store) -> None:
    """Wrong passwords tried in parallel (a scripted guess) count one after another: the fifth locks."""
    make_user(store, "dc.ali", "investigator", "MPS")
    start = threading.Barrier(8)

    def guess(i: int) -> str:
        start.wait()
        try:
            sign_in(store, "dc.ali", f"guess {i}", now=T0)
        except SignInFailed as e:
            return str(e)
        return "signed in"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(guess, range(8)))
    assert all("wrong user name or password" in a for a in answers)
    assert sum("now locked" in a for a in answers) == 1  # exactly one attempt was the fifth
    with pytest.raises(SignInFailed, match="locked"):
        sign_in(store, "dc.ali", PASSWORD, now=T0 + timedelta(minutes=1))


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(store) -> None:
    make_user(store, "dc.bo", "investigator", "MPS")
    for i in range(8):
        with pytest.raises(SignInFailed):
            sign_in(store, "dc.bo", "wrong password", now=T0 + timedelta(minutes=4 * i))
    assert sign_in(store, "dc.bo", PASSWORD, now=T0 + timedelta(minutes=40)).principal.username == "dc.bo"


def test_an_unknown_user_and_a_wrong_password_read_the_same(store) -> None:
    make_user(store, "dc.cy", "investigator", "GMP")
    with pytest.raises(SignInFailed) as unknown:
        sign_in(store, "nobody", PASSWORD)
    with pytest.raises(SignInFailed) as wrong:
        sign_in(store, "dc.cy", "not the password")
    assert str(unknown.value).replace("nobody", "X") == str(wrong.value).replace("dc.cy", "X")


def test_sessions_expire_after_30_minutes_idle_and_12_hours_in_all(store) -> None:
    make_user(store, "sgt.day", "supervisor")
    who = sign_in(store, "sgt.day", PASSWORD, now=T0).principal
    secret = open_session(store, who, now=T0)
    with store.session() as s:
        stored = s.scalar(select(LoginSession.token_hash))
        assert secret not in stored  # only a hash is kept
    t = T0
    while t + IDLE_TIMEOUT - timedelta(minutes=1) < T0 + ABSOLUTE_TIMEOUT:  # kept alive by use every 29 minutes
        t += IDLE_TIMEOUT - timedelta(minutes=1)
        assert resume_session(store, secret, now=t).principal.username == "sgt.day"
    with pytest.raises(SignInFailed, match="12 hours"):
        resume_session(store, secret, now=T0 + ABSOLUTE_TIMEOUT + timedelta(minutes=1))
    idle = open_session(store, who, now=T0)
    with pytest.raises(SignInFailed, match="30 minutes"):
        resume_session(store, idle, now=T0 + IDLE_TIMEOUT + timedelta(seconds=1))
    ended = open_session(store, who, now=T0)
    assert end_session(store, ended)
    with pytest.raises(SignInFailed, match="signed out"):
        resume_session(store, ended, now=T0)


def test_a_disabled_user_cannot_sign_in_or_use_a_session(store) -> None:
    make_user(store, "dc.dee", "investigator", "MPS")
    secret = open_session(store, sign_in(store, "dc.dee", PASSWORD).principal)
    with store.session() as s:
        set_disabled(s, SYSTEM, "dc.dee")
    with pytest.raises(SignInFailed, match="disabled"):
        sign_in(store, "dc.dee", PASSWORD)
    with pytest.raises(SignInFailed, match="disabled"):
        resume_session(store, secret)


def test_tokens_narrow_their_user_store_only_a_hash_and_can_be_revoked(store) -> None:
    make_user(store, "script.sup", "supervisor")
    who = sign_in(store, "script.sup", PASSWORD).principal
    with store.session() as s:
        with pytest.raises(Exception, match="does not hold users.manage"):
            create_token(s, who, "too much", ["users.manage"])
    with store.session() as s:
        token, secret = create_token(s, who, "nightly list", ["cases.read"], now=T0, days=30)
        tid = token.id
    with store.session() as s:
        assert s.get(ApiToken, tid).token_hash != secret and secret not in s.get(ApiToken, tid).token_hash
    p = token_principal(store, secret, now=T0 + timedelta(days=1))
    assert p.permissions == {"cases.read"} and p.via == "token"
    with pytest.raises(AccessDenied, match="cases.disseminate"):
        p.require("cases.disseminate", "disseminate")
    with pytest.raises(SignInFailed, match="expired"):
        token_principal(store, secret, now=T0 + timedelta(days=31))
    with store.session() as s:
        revoke_token(s, who, tid)
    with pytest.raises(SignInFailed, match="revoked"):
        token_principal(store, secret, now=T0 + timedelta(days=1))


def test_an_own_force_role_needs_a_force_and_roles_must_exist(store) -> None:
    with store.session() as s:
        with pytest.raises(Exception, match="give the user's --force"):
            add_user(s, SYSTEM, "dc.nf", PASSWORD, "investigator")
        with pytest.raises(Exception, match="unknown role"):
            add_user(s, SYSTEM, "dc.x", PASSWORD, "wizard")


def test_a_roles_file_must_say_who_may_ask_for_each_approval(tmp_path) -> None:
    shipped = yaml.safe_load(resources.files("ore.auth").joinpath("roles.yaml").read_text(encoding="utf-8"))
    del shipped["two_person_request"]["unseal"]
    path = tmp_path / "roles.yaml"
    path.write_text(yaml.safe_dump(shipped), encoding="utf-8")
    with pytest.raises(OreError, match=r"two_person_request names no permission for \['unseal'\]"):
        load_policy(str(path))
