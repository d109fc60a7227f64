"""A new app version reaches a phone that holds unsynced visits and an expired session: the
worker is told, reloads when ready, and nothing recorded is lost."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from server.pwa_routes import ROOT
from tests.conftest import CouchServer
from tests.pwa.conftest import PASSWORD, Field, Phone, make_field
from tests.pwa.helpers import household, log_in, record_visit, status, wait_controlled, wait_idle


@pytest.fixture
def shell_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "pwa"
    shutil.copytree(ROOT / "pwa", copy)
    return copy


@pytest.fixture
def field_server(couch_server: CouchServer, tmp_path: Path, shell_copy: Path) -> Iterator[Field]:
    """The server serves the shell from a copy, so the test can release a new version."""
    f = make_field(couch_server, tmp_path / "server", {"DOORSTEP_PWA_DIR": str(shell_copy)})
    try:
        yield f
    finally:
        f.server.stop()


def release(shell: Path, app_name: str) -> None:
    catalogue = shell / "locales" / "zh-CN.json"
    data = json.loads(catalogue.read_text())
    data["app"]["name"] = app_name
    catalogue.write_text(json.dumps(data, ensure_ascii=False, indent=2))


def test_a_new_version_is_picked_up_without_losing_unsynced_visits(
        field_server: Field, phone: Phone, shell_copy: Path) -> None:
    f = field_server
    f.put(household("G1-7-1-101", "7", "1", 1, "101"))
    page = phone.open()
    log_in(page, f.worker)
    wait_idle(page)
    wait_controlled(page)
    expect(page.locator("header h1")).to_have_text("网格走访")

    phone.context.set_offline(True)
    record_visit(page, "G1-7-1-101", notes="更新前记录")
    # Meanwhile the session ends on the server (expired, or revoked by an admin); then the
    # signal comes back. (The test's own request is not subject to the phone's offline mode.)
    assert phone.context.request.post("/api/logout", data={}).ok
    phone.context.set_offline(False)
    error = page.locator("header .error[data-kind=auth]")
    expect(error).to_contain_text("登录已过期")
    expect(error).to_contain_text("1 次走访已安全保存在本机")
    assert status(page)["pendingVisits"] == "1"

    release(shell_copy, "网格走访 新版")
    page.click("nav.tabs a[href='#/me']")
    page.click("text=检查更新")
    update = page.locator("header .update")
    expect(update).to_be_visible(timeout=20_000)
    expect(page.locator("header h1")).to_have_text("网格走访")  # nothing changes until asked
    update.locator("button").click()
    expect(page.locator("header h1")).to_have_text("网格走访 新版", timeout=20_000)
    assert status(page)["pendingVisits"] == "1"
    page.goto("/app/#/h/G1-7-1-101")
    expect(page.locator("li.visit .notes")).to_have_text("更新前记录")

    # Log in again: the visit recorded before the update goes up.
    page.click("header .error button")
    expect(page.locator(".login-view")).to_contain_text("1 次走访已安全保存在本机")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    wait_idle(page)
    assert [v["notes"] for v in f.all("visit") if v["author"] == f.worker] == ["更新前记录"]
