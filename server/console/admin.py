"""Administration (admins only): the grid hierarchy, the tag configuration, accounts, ledger
imports with a dry run shown before anything is written."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import Route

from server import authz
from server.console.web import Ctx, Refused, page, redirect, render, url
from sync import accounts, schema
from sync.couch import Couch
from sync.directory import Directory
from sync.ledger_import import LedgerFileError, Outcome, run_import
from sync.provision import provision_grid, sync_tag_config

KINDS = {"street": None, "community": "street", "grid": "community", "micro_grid": "grid"}
MAX_UPLOAD = 50 * 1024 * 1024
UPLOAD_HOURS = 6  # an uploaded ledger waits this long for its commit
REPORT_ROWS = 2000  # outcomes shown in the dry-run table (all are counted)


def _admin(ctx: Ctx) -> None:
    refusal = authz.can_administer(ctx.principal)
    if refusal:
        raise Refused(403, refusal)


@page
async def home(ctx: Ctx) -> Response:
    _admin(ctx)
    return render(ctx, "admin.html")


# --- the hierarchy ----------------------------------------------------------------------------


@page
async def hierarchy(ctx: Ctx) -> Response:
    _admin(ctx)
    directory = Directory(ctx.couch)
    entries = {kind: await ctx.run(directory.entries, kind) for kind in KINDS}
    done = ctx.field("done")
    return render(ctx, "hierarchy.html", entries=entries, kinds=KINDS,
                  flash=ctx.t("console.admin.saved", id=done) if done else "")


@page
async def save_entry(ctx: Ctx) -> Response:
    """Add or rename a street, community, grid or micro-grid (a grid also gets its database)."""
    _admin(ctx)
    kind, eid, name = ctx.field("kind"), ctx.field("id"), ctx.field("name")
    if kind not in KINDS:
        raise Refused(400, ctx.t("console.error.bad_value", field="kind"))
    doc: dict[str, Any] = {"_id": f"{kind}:{eid}", "type": kind, "name": name}
    parent_kind = KINDS[kind]
    directory = Directory(ctx.couch)
    if parent_kind:
        parent = ctx.field("parent")
        if await ctx.run(ctx.couch.get, directory.db, f"{parent_kind}:{parent}") is None:
            raise Refused(400, ctx.t("console.admin.no_parent", kind=parent_kind, id=parent))
        doc[parent_kind] = parent
    try:
        await ctx.run(directory.upsert, doc)
    except schema.SchemaError as exc:
        raise Refused(400, str(exc)) from None
    if kind == "grid":
        await ctx.run(provision_grid, ctx.couch, eid)
    ctx.console.forget_names()
    return redirect(url("/admin/hierarchy", done=f"{kind}:{eid}"))


# --- tags ------------------------------------------------------------------------------------


@page
async def tags(ctx: Ctx) -> Response:
    _admin(ctx)
    config = await ctx.run(ctx.console.tag_config)
    return render(ctx, "tags.html", config=config,
                  flash=ctx.t("console.admin.tags_saved", n=ctx.field("n")) if ctx.field("done")
                  else "")


def _number(ctx: Ctx, name: str) -> int:
    try:
        return int(ctx.field(name))
    except ValueError:
        raise Refused(400, ctx.t("console.error.bad_value", field=name)) from None


@page
async def save_tags(ctx: Ctx) -> Response:
    """The whole tag configuration from the form; copied into every grid database, where
    phones read it to compute due dates offline."""
    _admin(ctx)
    current = await ctx.run(ctx.console.tag_config)
    wanted: dict[str, Any] = {}
    for key in current["tags"]:
        if ctx.field(f"remove_{key}"):
            continue
        wanted[key] = {"zh": ctx.field(f"zh_{key}"), "en": ctx.field(f"en_{key}"),
                       "frequency_days": _number(ctx, f"freq_{key}"),
                       "special_care": bool(ctx.field(f"special_{key}"))}
    new_key = ctx.field("new_key")
    if new_key:
        if new_key in wanted:
            raise Refused(400, ctx.t("console.admin.tag_exists", key=new_key))
        wanted[new_key] = {"zh": ctx.field("new_zh"), "en": ctx.field("new_en"),
                           "frequency_days": _number(ctx, "new_freq"),
                           "special_care": bool(ctx.field("new_special"))}
    doc = {"_id": "config:tags", "type": "config", "tags": wanted,
           "default_frequency_days": _number(ctx, "default_frequency_days")}
    try:
        schema.validate(doc)
    except schema.SchemaError as exc:
        raise Refused(400, str(exc)) from None
    copied = await ctx.run(_save_tags, ctx.couch, doc)
    return redirect(url("/admin/tags", done=1, n=copied))


def _save_tags(couch: Couch, doc: dict[str, Any]) -> int:
    directory = Directory(couch)
    stored = couch.get(directory.db, "config:tags")
    if stored:
        doc["_rev"] = stored["_rev"]
    couch.put(directory.db, doc)
    grids = directory.grids()
    for grid in grids:
        sync_tag_config(couch, grid.db, grid.id, doc)
    return len(grids)


# --- accounts --------------------------------------------------------------------------------


@page
async def account_list(ctx: Ctx) -> Response:
    _admin(ctx)
    return await _accounts_page(ctx)


async def _accounts_page(ctx: Ctx, *, status: int = 200, flash: str = "",
                         secret: tuple[str, str] | None = None) -> Response:
    everyone = await ctx.run(accounts.all_accounts, ctx.couch)
    names = await ctx.run(ctx.console.names)
    return render(ctx, "accounts.html", status=status, people=sorted(everyone,
                  key=lambda a: (a.role, a.name)), grids=ctx.grids,
                  communities=names.communities, roles=accounts.ROLES, flash=flash,
                  secret=secret)


def _scopes(ctx: Ctx, role: str) -> tuple[list[str], list[str]]:
    known_grids = {g.id for g in ctx.grids}
    names = ctx.console.names()
    grids = ctx.fields("grids") if role == "worker" else []
    communities = ctx.fields("communities") if role == "supervisor" else []
    for g in grids:
        if g not in known_grids:
            raise Refused(400, ctx.t("console.error.no_grid", grid=g))
    for c in communities:
        if c not in names.communities:
            raise Refused(400, ctx.t("console.error.no_such_scope", scope=c))
    return grids, communities


@page
async def create_account(ctx: Ctx) -> Response:
    _admin(ctx)
    name, role = ctx.field("name").lower(), ctx.field("role")
    if await ctx.run(accounts.get, ctx.couch, name) is not None:
        raise Refused(409, ctx.t("console.admin.account_exists", name=name))
    grids, communities = await ctx.run(_scopes, ctx, role)
    try:
        account, password = await ctx.run(
            lambda: accounts.create(ctx.couch, name, role, password=ctx.field("password") or None,
                                    display_name=ctx.field("display_name"), grids=grids,
                                    communities=communities))
    except accounts.AccountError as exc:
        raise Refused(400, str(exc)) from None
    ctx.console.forget_names()  # pages show the new person by name at once
    return await _accounts_page(ctx, flash=ctx.t("console.admin.account_created",
                                                 name=account.name),
                                secret=(account.name, password))


@page
async def change_account(ctx: Ctx) -> Response:
    """Deactivate, reset the password of, or change the grids/communities of an account."""
    _admin(ctx)
    name, action = ctx.request.path_params["name"], ctx.field("action")
    if await ctx.run(accounts.get, ctx.couch, name) is None:
        raise Refused(404, ctx.t("console.admin.no_account", name=name))
    try:
        if action == "deactivate":
            if name == ctx.principal.name:
                raise Refused(400, ctx.t("console.admin.not_yourself"))
            await ctx.run(accounts.deactivate, ctx.couch, name)
            return await _accounts_page(ctx, flash=ctx.t("console.admin.deactivated",
                                                         name=name))
        if action == "password":
            password = await ctx.run(accounts.reset_password, ctx.couch, name, None)
            return await _accounts_page(ctx, flash=ctx.t("console.admin.password_reset",
                                                         name=name), secret=(name, password))
        if action == "scope":
            role = ctx.field("role")
            grids, communities = await ctx.run(_scopes, ctx, role)
            await ctx.run(_set_roles, ctx.couch, name, role, grids, communities)
            return await _accounts_page(ctx, flash=ctx.t("console.admin.scope_saved",
                                                         name=name))
    except accounts.AccountError as exc:
        raise Refused(400, str(exc)) from None
    raise Refused(400, ctx.t("console.error.bad_value", field="action"))


def _set_roles(couch: Couch, name: str, role: str, grids: list[str],
               communities: list[str]) -> None:
    """New roles for an active account, its password untouched (accounts.create resets it)."""
    doc = accounts.get(couch, name)
    if doc is None or not doc.get("doorstep_active", True):
        raise accounts.AccountError(f"{name} is deactivated; create the account again")
    roles = accounts.roles_for(role, grids, communities)
    doc.update(roles=roles, doorstep_roles=roles)
    status, body = couch.request("PUT", f"_users/org.couchdb.user:{name}", body=doc)
    if status not in (201, 202):
        raise accounts.AccountError(f"could not save {name}: {(body or {}).get('reason')}")


# --- ledger import ---------------------------------------------------------------------------


def _uploads(ctx: Ctx) -> Path:
    folder = Path(ctx.app_state.settings.var_dir) / "console-uploads"
    folder.mkdir(mode=0o700, exist_ok=True)
    cutoff = time.time() - UPLOAD_HOURS * 3600
    for old in folder.iterdir():  # forgotten uploads do not pile up
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    return folder


@page
async def import_form(ctx: Ctx) -> Response:
    _admin(ctx)
    return render(ctx, "import.html", report=None, token="", summary=None, committed=False)


@page
async def import_dry_run(ctx: Ctx) -> Response:
    """Keep the upload, check it without writing, and show what would happen."""
    _admin(ctx)
    upload = ctx.form.get("ledger") if ctx.form is not None else None
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Refused(400, ctx.t("console.import.no_file"))
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise Refused(400, ctx.t("console.import.bad_type"))
    if upload.size is not None and upload.size > MAX_UPLOAD:
        raise Refused(413, ctx.t("console.import.too_big", mb=MAX_UPLOAD // 2**20))
    token = secrets.token_urlsafe(16)
    folder = await ctx.run(_uploads, ctx)
    path = folder / f"{token}{suffix}"
    await ctx.run(_keep, upload, path)
    (folder / f"{token}.json").write_text(json.dumps(
        {"user": ctx.principal.name, "name": upload.filename, "suffix": suffix}))
    return await _run(ctx, path, token, upload.filename, dry_run=True)


def _keep(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1024 * 1024)


@page
async def import_commit(ctx: Ctx) -> Response:
    _admin(ctx)
    token = ctx.field("token")
    folder = await ctx.run(_uploads, ctx)
    meta_path = folder / f"{token}.json"
    if not token.replace("-", "").replace("_", "").isalnum() or not meta_path.exists():
        raise Refused(404, ctx.t("console.import.expired"))
    meta = json.loads(meta_path.read_text())
    if meta["user"] != ctx.principal.name:
        raise Refused(403, ctx.t("console.import.not_yours"))
    path = folder / f"{token}{meta['suffix']}"
    if not path.exists():
        raise Refused(404, ctx.t("console.import.expired"))
    try:
        return await _run(ctx, path, token, meta["name"], dry_run=False)
    finally:
        path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)


async def _run(ctx: Ctx, path: Path, token: str, name: str, *, dry_run: bool) -> Response:
    shown: list[Outcome] = []

    def keep(outcome: Outcome) -> None:
        if outcome.action != "unchanged" and len(shown) < REPORT_ROWS:
            shown.append(outcome)

    try:
        summary = await ctx.run(lambda: run_import(ctx.couch, path, dry_run=dry_run,
                                                   on_outcome=keep))
    except LedgerFileError as exc:
        path.unlink(missing_ok=True)
        raise Refused(400, str(exc)) from None
    return render(ctx, "import.html", report=shown, summary=summary, token=token,
                  committed=not dry_run, filename=name, limit=REPORT_ROWS)


def routes() -> list[Route]:
    return [
        Route("/admin", home),
        Route("/admin/hierarchy", hierarchy),
        Route("/admin/hierarchy", save_entry, methods=["POST"]),
        Route("/admin/tags", tags),
        Route("/admin/tags", save_tags, methods=["POST"]),
        Route("/admin/accounts", account_list),
        Route("/admin/accounts", create_account, methods=["POST"]),
        Route("/admin/accounts/{name}", change_account, methods=["POST"]),
        Route("/admin/import", import_form),
        Route("/admin/import", import_dry_run, methods=["POST"]),
        Route("/admin/import/commit", import_commit, methods=["POST"]),
    ]

