"""The console's own CSS and script, and the two libraries it uses, from our origin.

Libraries come from node_modules through an explicit allow-list: a name not listed here is
a 404, so nothing else under node_modules is ever reachable.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent.parent
OWN = Path(__file__).resolve().parent / "static"
VENDOR = {
    "htmx.min.js": ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js",
    "chart.umd.min.js": ROOT / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js",
}
FILES = {"console.css": OWN / "console.css", "console.js": OWN / "console.js"}
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _file(path: Path | None) -> Response:
    if path is None or not path.is_file():
        return JSONResponse({"error": "not_found", "reason": "no such file"}, status_code=404)
    return FileResponse(path, media_type=TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=3600"})


async def own(request: Request) -> Response:
    return _file(FILES.get(request.path_params["name"]))


async def vendor(request: Request) -> Response:
    return _file(VENDOR.get(request.path_params["name"]))


def routes() -> list[Route]:
    return [Route("/static/vendor/{name}", vendor), Route("/static/{name}", own)]
