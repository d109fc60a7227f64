"""Serving the field app: the shell under /app/, its service worker, and vendored libraries.

The shell is plain files in `pwa/` (no build step). The service worker is generated per
request from `pwa/sw.js` with a precache manifest in front of it: every shell file with a
revision that is the hash of its bytes, and an app version that is the hash of the whole
manifest. Change one byte of the shell and the worker's own bytes change, so the browser
installs the new worker, Workbox re-fetches only the files whose revision changed and drops
the rest. Nothing is cached by hand and nothing comes from a CDN: `/vendor/` serves an
explicit allow-list of files from node_modules, never a directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"

APP_PREFIX = "/app/"

# /vendor/<name> → file in node_modules. Only these names exist.
VENDOR: dict[str, str] = {
    "pouchdb.min.js": "pouchdb/dist/pouchdb.min.js",
    "i18next.js": "i18next/dist/esm/i18next.js",
    "workbox-window.prod.mjs": "workbox-window/build/workbox-window.prod.mjs",
    "workbox/workbox-sw.js": "workbox-sw/build/workbox-sw.js",
    "workbox/workbox-core.prod.js": "workbox-core/build/workbox-core.prod.js",
    "workbox/workbox-precaching.prod.js": "workbox-precaching/build/workbox-precaching.prod.js",
    "workbox/workbox-routing.prod.js": "workbox-routing/build/workbox-routing.prod.js",
    "workbox/workbox-strategies.prod.js": "workbox-strategies/build/workbox-strategies.prod.js",
}
# Vendor files the page itself loads, so they are precached with the shell.
VENDOR_PRECACHED = ("pouchdb.min.js", "i18next.js", "workbox-window.prod.mjs")

# Shell files by suffix; anything else under pwa/ (sw.js, notes) is not served as a file.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

# Offline copies live in the service worker's precache; HTTP caches must always ask, so an
# update is seen at once (security headers, CSP included, come from server/security_headers.py).
REVALIDATE = {"Cache-Control": "no-cache"}


def pwa_dir() -> Path:
    """`pwa/` in the source tree; DOORSTEP_PWA_DIR points elsewhere (tests of the update path)."""
    return Path(os.environ.get("DOORSTEP_PWA_DIR") or ROOT / "pwa").resolve()


@dataclass(frozen=True)
class ShellFile:
    url: str
    path: Path
    media_type: str


class Shell:
    """The shell's files and their revisions, re-read when a file changes on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stamp: tuple[tuple[str, int, int], ...] = ()
        self._files: dict[str, ShellFile] = {}
        self._manifest: list[dict[str, str]] = []
        self.version = ""

    def files(self) -> dict[str, ShellFile]:
        """URL → file, for every servable file under the shell folder."""
        self._refresh()
        return self._files

    def manifest(self) -> tuple[list[dict[str, str]], str]:
        self._refresh()
        return self._manifest, self.version

    def _scan(self) -> dict[str, ShellFile]:
        found: dict[str, ShellFile] = {}
        for path in sorted(self.root.rglob("*")):
            media = MEDIA_TYPES.get(path.suffix)
            rel = path.relative_to(self.root).as_posix()
            if not path.is_file() or media is None or rel == "sw.js" or rel.startswith("."):
                continue
            url = APP_PREFIX if rel == "index.html" else APP_PREFIX + rel
            found[url] = ShellFile(url, path, media)
        for name in VENDOR_PRECACHED:
            url = f"/vendor/{name}"
            found[url] = ShellFile(url, NODE_MODULES / VENDOR[name], MEDIA_TYPES[".js"])
        return found

    def _refresh(self) -> None:
        files = self._scan()
        stamp = tuple(
            (url, f.path.stat().st_mtime_ns, f.path.stat().st_size) for url, f in files.items()
        )
        if stamp == self._stamp:
            return
        manifest = [
            {"url": url, "revision": hashlib.sha256(f.path.read_bytes()).hexdigest()[:16]}
            for url, f in files.items()
        ]
        self._files = {url: f for url, f in files.items() if url.startswith(APP_PREFIX)}
        self._manifest = manifest
        self.version = hashlib.sha256(json.dumps(manifest).encode()).hexdigest()[:12]
        self._stamp = stamp


def not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": "not_found", "reason": f"no such file: {what}"}, 404)


def routes() -> list[BaseRoute]:
    shell = Shell(pwa_dir())

    async def root(request: Request) -> Response:
        return RedirectResponse(APP_PREFIX, 302)

    async def app_file(request: Request) -> Response:
        url = request.url.path
        f = shell.files().get(url)
        if f is None:
            return not_found(url)
        return Response(f.path.read_bytes(), media_type=f.media_type, headers=REVALIDATE)

    async def service_worker(request: Request) -> Response:
        manifest, version = shell.manifest()
        preamble = (
            f"self.DOORSTEP_VERSION = {json.dumps(version)};\n"
            f"self.DOORSTEP_PRECACHE = {json.dumps(manifest, indent=0)};\n"
        )
        body = preamble + (shell.root / "sw.js").read_text(encoding="utf-8")
        return Response(body, media_type=MEDIA_TYPES[".js"], headers=REVALIDATE)

    async def vendor(request: Request) -> Response:
        name = request.path_params["name"]
        rel = VENDOR.get(name)
        if rel is None:
            return not_found(f"/vendor/{name}")
        path = NODE_MODULES / rel
        return Response(path.read_bytes(), media_type=MEDIA_TYPES[".js"], headers=REVALIDATE)

    return [
        Route("/", root),
        Route(APP_PREFIX + "sw.js", service_worker),
        Route("/app", root),
        Route(APP_PREFIX + "{rest:path}", app_file),
        Route("/vendor/{name:path}", vendor),
    ]
