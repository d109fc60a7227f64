"""The server's own login page: zh-CN by default, English on request, CSRF-protected."""

from __future__ import annotations

import json
import re

import httpx

from server import i18n
from tests.gateway.conftest import PASSWORD, World


def _form(page: httpx.Response) -> dict[str, str]:
    return dict(re.findall(r'name="(csrf|next|lang)" value="([^"]*)"', page.text))


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    zh, en = i18n.catalogue("zh-CN"), i18n.catalogue("en")
    assert zh.keys() == en.keys()
    for key in zh:
        assert set(re.findall(r"{(\w+)}", zh[key])) == set(re.findall(r"{(\w+)}", en[key])), key
    for locale in i18n.LOCALES:  # valid JSON files, no empty strings
        data = json.loads((i18n.CATALOGUES / f"{locale}.json").read_text(encoding="utf-8"))
        assert all(isinstance(v, str) and v.strip() for v in data.values())


def test_page_is_chinese_by_default_and_english_on_request(world: World) -> None:
    client = world.server.client()
    zh = client.get("/login")
    assert zh.status_code == 200 and 'lang="zh-CN"' in zh.text and "网格员登录" in zh.text
    assert zh.headers["cache-control"] == "no-store"
    en = world.server.client().get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert 'lang="en"' in en.text and "Grid worker login" in en.text
    assert "Grid worker login" in client.get("/login?lang=en").text
    assert client.get("/login.css").status_code == 200


def test_login_form_signs_in_and_goes_on(world: World) -> None:
    client = world.server.client()
    form = _form(client.get("/login?next=/app/"))
    r = client.post("/login", data={**form, "name": world.names["w1"], "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/app/"
    assert client.get("/api/me").json()["name"] == world.names["w1"]


def test_login_form_refuses_a_post_without_its_token(world: World) -> None:
    client = world.server.client()
    r = client.post("/login", data={"name": world.names["w1"], "password": PASSWORD,
                                    "csrf": "made-up"})
    assert r.status_code == 403 and "登录页面已过期" in r.text
    assert client.get("/api/me").status_code == 401
    other = world.server.client()  # a token from another browser does not fit this one
    form = _form(other.get("/login"))
    r = client.post("/login", data={**form, "name": world.names["w1"], "password": PASSWORD})
    assert r.status_code == 403


def test_login_form_shows_errors_escaped_and_never_redirects_off_site(world: World) -> None:
    client = world.server.client()
    form = _form(client.get("/login?next=//evil.example/x"))
    assert form["next"] == "/"
    r = client.post("/login", data={**form, "name": '<script>alert(1)</script>',
                                    "password": "wrong-password"})
    assert r.status_code == 401 and "用户名或密码不正确" in r.text
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;" in r.text
    form = _form(r)
    r = client.post("/login", data={**form, "next": "https://evil.example/",
                                    "name": world.names["w1"], "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/"
