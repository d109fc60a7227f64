"""How the server hands out the field app: versioned precache manifest, explicit vendor list."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from server.pwa_routes import ROOT, VENDOR, Shell
from tests.pwa.conftest import Field


def manifest_of(sw_source: str) -> tuple[str, list[dict[str, str]]]:
    version = json.loads(re.search(r"self.DOORSTEP_VERSION = (.*);", sw_source).group(1))
    precache = re.search(r"self.DOORSTEP_PRECACHE = (\[.*?\]);", sw_source, re.S)
    entries = json.loads(precache.group(1))
    return version, entries


def test_the_service_worker_lists_every_shell_file_with_the_hash_of_its_bytes(
        field_server: Field) -> None:
    with field_server.server.client() as http:
        sw = http.get("/app/sw.js")
        assert sw.status_code == 200
        assert sw.headers["cache-control"] == "no-cache"
        version, entries = manifest_of(sw.text)
        urls = {e["url"] for e in entries}
        assert {"/app/", "/app/js/main.js", "/app/locales/zh-CN.json", "/app/manifest.webmanifest",
                "/vendor/pouchdb.min.js", "/vendor/i18next.js"} <= urls
        assert "/app/sw.js" not in urls
        for entry in entries:
            body = http.get(entry["url"])
            assert body.status_code == 200, entry["url"]
            assert entry["revision"] == hashlib.sha256(body.content).hexdigest()[:16]
        assert "importScripts('/vendor/workbox/workbox-sw.js')" in sw.text
        for name in VENDOR:
            if name.startswith("workbox/"):
                assert http.get(f"/vendor/{name}").status_code == 200


def test_only_listed_files_are_served(field_server: Field) -> None:
    with field_server.server.client() as http:
        assert http.get("/").headers["location"] == "/app/"
        page = http.get("/app/")
        assert "text/html" in page.headers["content-type"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        manifest = http.get("/app/manifest.webmanifest").json()
        assert manifest["display"] == "standalone" and manifest["lang"] == "zh-CN"
        assert manifest["start_url"] == "/app/" and len(manifest["icons"]) >= 3
        for path in ("/vendor/../pyproject.toml", "/app/../pyproject.toml"):
            assert http.get(path).status_code == 404, path  # normalised before it gets here
        for path in ("/vendor/pouchdb/package.json", "/vendor/%2e%2e/server/settings.py",
                     "/app/%2e%2e/pyproject.toml", "/app/nothing.js", "/app/sw.jsx"):
            r = http.get(path)
            assert r.status_code == 404, path
            assert r.json()["error"] == "not_found"


def test_a_changed_file_changes_its_revision_and_the_version_only(tmp_path: Path) -> None:
    copy = tmp_path / "pwa"
    shutil.copytree(ROOT / "pwa", copy)
    shell = Shell(copy)
    before, v1 = shell.manifest()
    before = {e["url"]: e["revision"] for e in before}
    css = copy / "css" / "app.css"
    css.write_text(css.read_text() + "\n/* tweak */\n")
    after, v2 = shell.manifest()
    after = {e["url"]: e["revision"] for e in after}
    assert v1 != v2
    assert {u for u in before if before[u] != after[u]} == {"/app/css/app.css"}
