"""Tokens expire, can be listed and revoked from the CLI and the API, and act for a member only while they are
one: membership is checked on every request, not only at submission."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from squall.server.app import create_app
from squall.store import Store


@pytest.fixture
def api(squall, monkeypatch):
    monkeypatch.delenv("SQUALL_DATABASE_URL", raising=False)
    squall.env.pop("SQUALL_DATABASE_URL", None)
    made = {}
    for name, user, org, role in (("ana", "ana", "acme", "admin"), ("bob", "bob", "acme", "member"),
                                  ("eve", "eve", "bravo", "admin")):
        code, token = squall.json("token", "create", "--user", user, "--org", org, "--role", role)
        assert code == 0, token
        made[name] = token
    client = TestClient(create_app(squall.home, take_over_every=0))
    client.made = made
    return client


def get(client, who: str, path: str):
    return client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {client.made[who]['token']}"})


def test_a_removed_member_reads_nothing_more_and_their_tokens_are_revoked(squall, api):
    assert get(api, "bob", "/jobs").status_code == 200  # an open organisation: every token's user is at home
    for user in ("ana", "bob"):
        assert squall.run("member", "set", "acme", user).returncode == 0
    assert get(api, "bob", "/jobs").status_code == 200
    removed = squall.json("member", "remove", "acme", "bob")
    assert removed == (0, {"org": "acme", "user": "bob", "removed": True, "tokens_revoked": 1})
    for path in ("/jobs", "/usage", "/me"):
        assert get(api, "bob", path).status_code == 401
    revoked = {t["id"]: t["revoked_at"] for t in squall.json("token", "list")[1]}
    assert revoked[api.made["bob"]["id"]] is not None and revoked[api.made["ana"]["id"]] is None
    last = squall.run("member", "remove", "acme", "ana")  # the organisation would open to everyone
    assert last.returncode == 2 and "last member" in last.stderr
    assert squall.run("member", "remove", "acme", "nobody").returncode == 2


def test_membership_is_checked_on_every_request_and_caps_the_tokens_role(squall, api):
    assert get(api, "ana", "/sites").status_code == 200
    assert squall.run("member", "set", "acme", "bob").returncode == 0  # acme now has members: bob only
    assert get(api, "ana", "/jobs").status_code == 401  # ana's token was made while acme was open
    assert squall.run("member", "set", "acme", "ana", "--role", "member").returncode == 0
    me = get(api, "ana", "/me")
    assert me.status_code == 200 and me.json()["data"]["role"] == "member"  # an admin token, a member's rights
    assert get(api, "ana", "/sites").status_code == 403
    assert get(api, "eve", "/me").status_code == 200  # another organisation, still open


def test_tokens_expire_and_their_lifetime_is_bounded(squall, api):
    code, short = squall.json("token", "create", "--user", "cy", "--org", "acme", "--expires", "1h")
    assert code == 0
    client = TestClient(create_app(squall.home, take_over_every=0))
    headers = {"Authorization": f"Bearer {short['token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    store = Store(squall.home)
    with store.transaction() as db:
        db.execute("UPDATE tokens SET expires_at = expires_at - 7200 WHERE id = ?", (short["id"],))
    store.close()
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    for bad in ("400d", "0d", "30", "never", "1w"):
        refused = squall.run("token", "create", "--user", "cy", "--org", "acme", "--expires", bad)
        assert refused.returncode == 2 and "--expires" in refused.stderr, bad
    lifetimes = dict(Store(squall.home).rows("SELECT id, expires_at - created_at FROM tokens"))
    assert lifetimes[api.made["ana"]["id"]] == pytest.approx(90 * 86400, abs=1)  # bounded when not asked
    assert lifetimes[short["id"]] == pytest.approx(3600 - 7200, abs=1)  # an hour, less the two taken above


def test_the_api_lists_and_revokes_tokens_within_what_the_token_may_see(api):
    mine = get(api, "bob", "/tokens").json()["data"]
    assert [t["id"] for t in mine] == [api.made["bob"]["id"]]  # a member sees their own
    everyone = {t["id"] for t in get(api, "ana", "/tokens").json()["data"]}
    assert everyone == {api.made["ana"]["id"], api.made["bob"]["id"]}  # an admin: the organisation's, not bravo's
    assert all("secret" not in str(t) and "sq_" not in str(t) for t in get(api, "ana", "/tokens").json()["data"])

    def delete(who: str, token_id: str):
        return api.delete(f"/api/v1/tokens/{token_id}",
                          headers={"Authorization": f"Bearer {api.made[who]['token']}"})

    assert delete("bob", api.made["ana"]["id"]).status_code == 404  # not theirs
    assert delete("eve", api.made["bob"]["id"]).status_code == 404  # another organisation's
    revoked = delete("ana", api.made["bob"]["id"])
    assert revoked.status_code == 200 and revoked.json()["data"]["revoked_at"] is not None
    assert get(api, "bob", "/me").status_code == 401
    assert delete("ana", api.made["bob"]["id"]).status_code == 404  # once
