"""The console over HTTP on a real server: who may see and do what, CSRF, the review, needs
and assignment loops, exports read back, administration and conflict settling."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import openpyxl
import pytest

from sync import accounts, naming
from sync.directory import Directory
from sync.ledger_template import household_rows, write_ledger
from tests.conftest import start_server, wait_for
from tests.console.conftest import Office
from tests.console.docs_factory import household, need_event, visit

HTML = {"accept": "text/html"}


def now_minus(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def fresh(grid: str) -> str:
    return f"{grid}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def b_side(office: Office) -> dict[str, str]:
    """Community B's data (grid G9) that community A's supervisor must never reach."""
    hid = fresh("G9")
    h = household("G9", hid, name="赵九", phone="13999999999")
    v = visit("G9", hid, now_minus(1), author=office.names["w9"],
              needs=[{"need_id": "need-b", "category": "repair", "text": "门坏了"}])
    office.put("G9", h, v)
    office.copy("G9")
    return {"household": hid, "visit": v["_id"]}


def g9_docs(office: Office) -> int:
    return len(office.couch.all_docs(office.db("G9")))


def test_a_supervisor_of_a_gets_403_for_anything_of_b(office: Office, b_side: dict) -> None:
    sup = office.login("sup1")
    hid, vid = b_side["household"], b_side["visit"]
    for path in ("/console/dashboard?scope=community:C2", "/console/review?scope=community:C2",
                 "/console/review?grid=G9", f"/console/visit/G9/{vid}",
                 f"/console/visit/G9/{vid}/photo", f"/console/household/G9/{hid}",
                 "/console/assignments?scope=community:C2", "/console/assignments/new?grid=G9",
                 "/console/needs?scope=community:C2", "/console/conflicts?scope=community:C2",
                 "/console/conflict/G9/conflict:x", "/console/export?scope=community:C2",
                 "/console/export/file?scope=community:C2&kind=visits&format=csv"
                 "&from=2026-01-01&to=2026-12-31",
                 "/console/admin", "/console/admin/accounts", "/console/admin/import"):
        r = sup.get(path)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert r.json()["error"] == "forbidden"
    before = g9_docs(office)
    mine = fresh("G1")
    office.put("G1", household("G1", mine))
    posts = {
        f"/console/review/G9/{vid}": {"decision": "approved"},
        "/console/review/approve": {"visit": f"G9/{vid}"},
        "/console/assignments": {"grid": "G9", "household": hid, "worker": office.names["w9"],
                                 "due": "2099-01-01", "reason": "x"},
        "/console/needs/G9/need-b": {"event": "dispatched", "to": "物业"},
        f"/console/household/G9/{hid}/move": {"to": "G1"},
        f"/console/household/G1/{mine}/move": {"to": "G9"},  # out of A into B: B is not mine
        "/console/admin/hierarchy": {"kind": "grid", "id": "G77", "name": "x", "parent": "C2"},
        "/console/admin/tags": {"default_frequency_days": "30"},
        "/console/admin/accounts": {"name": "intruder", "role": "admin"},
    }
    for path, data in posts.items():
        r = sup.send_form(path, data)
        assert r.status_code == 403, (path, r.status_code, r.text)
    # a form field pointing into B while the URL names A's grid finds nothing to touch
    r = sup.send_form(f"/console/review/G1/{vid}", {"decision": "approved"})
    assert r.status_code == 404
    r = sup.send_form("/console/assignments", {"grid": "G1", "household": hid,
                                               "worker": office.names["w1"],
                                               "due": "2099-01-01", "reason": "x"})
    assert r.status_code == 404
    assert g9_docs(office) == before
    assert office.couch.get(office.db("G1"), f"household:{mine}")["grid"] == "G1"
    found = sup.get("/console/search?q=赵九", headers=HTML)
    assert found.status_code == 200 and hid not in found.text
    assert hid in office.login("sup2").get("/console/search?q=赵九", headers=HTML).text


def test_a_form_without_a_valid_csrf_token_is_rejected(office: Office) -> None:
    hid = fresh("G1")
    v = visit("G1", hid, now_minus(1), author=office.names["w1"])
    office.put("G1", household("G1", hid), v)
    sup = office.login("sup1")
    other = office.login("sup1")  # another session of the same person: another token
    path = f"/console/review/G1/{v['_id']}"
    for token in ("", "0" * 64, other.csrf()):
        r = sup.send_form(path, {"decision": "approved"}, csrf=token, headers=HTML)
        assert r.status_code == 403, token
        assert "表单已过期" in r.text or "form has expired" in r.text
    assert sup.post(path, data={"decision": "approved"}).status_code == 403  # no field at all
    assert office.couch.get(office.db("G1"), f"review:{v['_id'].split(':', 1)[1]}") is None
    assert sup.send_form(path, {"decision": "approved"}).status_code == 303


def test_workers_and_strangers_stay_out(office: Office) -> None:
    assert office.login("w1").get("/console/dashboard").status_code == 403
    anonymous = office.login("w1")
    anonymous.cookies.clear()
    r = anonymous.get("/console/review", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert anonymous.get("/console/review").status_code == 401


def test_return_then_approve_the_amendment_and_bulk_approve(office: Office) -> None:
    w1 = office.names["w1"]
    hid = fresh("G1")
    first = visit("G1", hid, now_minus(2), author=w1)
    others = [visit("G1", hid, now_minus(1.5 - i / 10), author=w1) for i in range(3)]
    office.put("G1", household("G1", hid), first, *others)
    office.copy("G1")
    sup = office.login("sup1")
    queue = sup.get(f"/console/review?grid=G1&worker={w1}", headers=HTML).text
    assert all(v["_id"] in queue for v in (first, *others))
    assert "<td>w1 测试</td>" in queue  # people by the name the admin gave them, not login

    r = sup.send_form(f"/console/review/G1/{first['_id']}",
                      {"decision": "returned", "reason": "请补拍门牌照片"})
    assert r.status_code == 303
    (returned,) = [d for d in office.all("G1", "review") if d["visit"] == first["_id"]]
    assert (returned["decision"], returned["author"]) == ("returned", office.names["sup1"])
    push = office.couch.get(office.couch.name(naming.PUSH), f"push_request:{returned['_id']}")
    assert (push["kind"], push["user"]) == ("returned_visit", w1)

    amendment = visit("G1", hid, now_minus(0.5), author=w1, amends=first["_id"])
    office.put("G1", amendment)
    office.copy("G1")
    queue = sup.get("/console/review?grid=G1", headers=HTML).text
    assert first["_id"] not in queue and amendment["_id"] in queue
    page = sup.get(f"/console/visit/G1/{amendment['_id']}", headers=HTML).text
    assert "请补拍门牌照片" in page  # shown beside the amendment
    sup.send_form(f"/console/review/G1/{amendment['_id']}", {"decision": "approved"})

    r = sup.send_form("/console/review/approve",
                      {"visit": [f"G1/{v['_id']}" for v in others]})
    assert r.status_code == 303 and "n=3" in r.headers["location"]
    decided = {d["visit"]: d["decision"] for d in office.all("G1", "review")}
    assert decided[amendment["_id"]] == "approved"
    assert all(decided[v["_id"]] == "approved" for v in others)
    assert hid not in sup.get("/console/review?grid=G1", headers=HTML).text


def test_needs_go_round_the_loop(office: Office) -> None:
    hid = fresh("G2")
    office.put("G2", household("G2", hid),
               need_event("G2", hid, "loop-1", "raised", now_minus(10), author=office.names["w2"],
                          category="repair", text="楼道灯坏了"))
    office.copy("G2")
    sup = office.login("sup1")
    listed = sup.get("/console/needs?scope=community:C1&overdue=1", headers=HTML).text
    assert 'data-need="loop-1"' in listed  # ten days unresolved: overdue
    steps = [("dispatched", {"to": "物业服务中心"}), ("claimed", {}), ("resolved", {}),
             ("evaluated", {"evaluation": "satisfied"}), ("closed", {})]
    for event, extra in steps:
        r = sup.send_form("/console/needs/G2/loop-1",
                          {"event": event, "scope": "community:C1", **extra})
        assert r.status_code == 303, (event, r.text)
    events = [d["event"] for d in office.all("G2", "need_event") if d["need_id"] == "loop-1"]
    assert sorted(events) == sorted(["raised", *[e for e, _ in steps]])
    again = sup.send_form("/console/needs/G2/loop-1", {"event": "dispatched", "to": "x"})
    assert again.status_code == 409
    page = sup.get("/console/needs?scope=community:C1&state=closed", headers=HTML).text
    assert 'data-need="loop-1" data-state="closed"' in page


def test_assignments_are_created_listed_and_cancelled(office: Office) -> None:
    hids = [fresh("G1") for _ in range(3)]
    office.put("G1", *[household("G1", h) for h in hids])
    office.copy("G1")
    sup = office.login("sup1")
    chooser = sup.get("/console/assignments/new?grid=G1&scope=community:C1", headers=HTML)
    assert all(h in chooser.text for h in hids) and office.names["w1"] in chooser.text
    r = sup.send_form("/console/assignments", {
        "grid": "G1", "household": hids[:2], "worker": office.names["w1"],
        "due": (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d"),
        "reason": "核实独居老人情况", "scope": "community:C1"})
    assert r.status_code == 303
    made = [a for a in office.all("G1", "assignment") if a["household"] in hids]
    assert len(made) == 2
    pushes = [office.couch.get(office.couch.name(naming.PUSH), f"push_request:{a['_id']}")
              for a in made]
    assert all(p["kind"] == "assignment" and p["user"] == office.names["w1"] for p in pushes)
    listing = sup.get("/console/assignments?scope=community:C1&status=open", headers=HTML).text
    assert all(f'data-assignment="{a["_id"]}" data-status="open"' in listing for a in made)

    done = visit("G1", made[0]["household"], now_minus(0.1), author=office.names["w1"],
                 assignment=made[0]["_id"])
    office.put("G1", done)
    sup.send_form(f"/console/assignments/G1/{made[1]['_id']}/cancel",
                  {"scope": "community:C1"})
    office.copy("G1")
    listing = sup.get("/console/assignments?scope=community:C1", headers=HTML).text
    assert f'data-assignment="{made[0]["_id"]}" data-status="visited"' in listing
    assert f'data-assignment="{made[1]["_id"]}" data-status="cancelled"' in listing


def test_exports_read_back_match_the_data(office: Office) -> None:
    hid = fresh("G2")
    mine = [visit("G2", hid, now_minus(3 + i), author=office.names["w2"], notes=f"第{i}次")
            for i in range(5)]
    office.put("G2", household("G2", hid, name="钱二"), *mine)
    office.copy()
    sup = office.login("sup1")
    today = datetime.now(UTC).date()
    period = {"from": (today - timedelta(days=60)).isoformat(), "to": today.isoformat(),
              "scope": "community:C1", "kind": "visits"}
    r = sup.get("/console/export/file", params={**period, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    exported = {row[0]: row for row in rows[1:]}
    expected = {d["_id"]: d for g in ("G1", "G2") for d in office.all(g, "visit")}
    assert set(exported) == set(expected)  # every visit of C1 in the period, none of G9
    for v in mine:
        assert exported[v["_id"]][2] == hid and exported[v["_id"]][7] == v["notes"]

    x = sup.get("/console/export/file", params={**period, "format": "xlsx"})
    book = openpyxl.load_workbook(io.BytesIO(x.content), read_only=True)
    sheet = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert {r[0] for r in sheet[1:]} == set(expected)

    people = sup.get("/console/export/file", params={**period, "kind": "households",
                                                      "format": "csv"})
    names = {row[6] for row in csv.reader(io.StringIO(people.content.decode("utf-8-sig")))}
    assert "钱二" in names and "赵九" not in names
    bad = sup.get("/console/export/file", params={**period, "format": "pdf"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


def test_admin_imports_a_ledger_after_seeing_the_dry_run(office: Office, tmp_path) -> None:
    adm = office.login("adm")
    hid = fresh("G2")
    doc = household("G2", hid, name="孙立", building="9", room="901")
    ledger = tmp_path / "ledger.csv"
    write_ledger(ledger, household_rows(doc, {}))
    with ledger.open("rb") as f:
        dry = adm.post("/console/admin/import", data={"csrf": adm.csrf()},
                       files={"ledger": ("ledger.csv", f, "text/csv")}, headers=HTML)
    assert dry.status_code == 200, dry.text
    assert 'data-key="created">1<' in dry.text and 'data-action="create"' in dry.text
    token = dry.text.split('name="token" value="')[1].split('"')[0]
    assert office.couch.get(office.db("G2"), "household:G2-9-1-901") is None  # dry run
    done = adm.send_form("/console/admin/import/commit", {"token": token}, headers=HTML)
    assert done.status_code == 200 and 'data-key="created">1<' in done.text
    stored = office.couch.get(office.db("G2"), "household:G2-9-1-901")
    assert stored["members"]["m1"]["name"] == "孙立"
    again = adm.send_form("/console/admin/import/commit", {"token": token})
    assert again.status_code == 404


def test_admin_edits_hierarchy_tags_and_accounts(office: Office) -> None:
    adm = office.login("adm")
    r = adm.send_form("/console/admin/hierarchy",
                      {"kind": "grid", "id": "G5", "name": "第五网格", "parent": "C1"})
    assert r.status_code == 303
    assert office.couch.exists(office.db("G5"))
    bad = adm.send_form("/console/admin/hierarchy",
                        {"kind": "grid", "id": "bad id!", "name": "x", "parent": "C1"})
    assert bad.status_code == 400

    page = adm.get("/console/admin/tags", headers=HTML).text
    assert "elderly_alone" in page
    config = office.couch.get(office.couch.name(naming.DIRECTORY), "config:tags")
    form = {"default_frequency_days": "60", "new_key": "pregnant", "new_zh": "孕产妇",
            "new_en": "Pregnant", "new_freq": "14", "new_special": "1"}
    for key, spec in config["tags"].items():
        form.update({f"zh_{key}": spec["zh"], f"en_{key}": spec["en"],
                     f"freq_{key}": str(spec["frequency_days"])})
        if spec["special_care"]:
            form[f"special_{key}"] = "1"
    assert adm.send_form("/console/admin/tags", form).status_code == 303
    copied = office.couch.get(office.db("G1"), "config:tags")  # phones read this copy
    assert copied["default_frequency_days"] == 60
    assert copied["tags"]["pregnant"]["frequency_days"] == 14

    name = f"w{uuid.uuid4().hex[:6]}"
    made = adm.send_form("/console/admin/accounts",
                         {"name": name, "role": "worker", "grids": ["G1", "G2"],
                          "display_name": "新网格员"}, headers=HTML)
    assert made.status_code == 200 and 'id="secret"' in made.text
    password = made.text.split('id="secret"')[1].split("<code>")[1].split("</code>")[0]
    login = office.login("adm").post("/api/login", json={"name": name, "password": password})
    assert login.status_code == 200
    adm.send_form(f"/console/admin/accounts/{name}", {"action": "scope", "role": "worker",
                                                      "grids": ["G2"]})
    assert accounts.account(office.couch, name).grids == ("G2",)
    assert office.login("adm").post("/api/login", json={"name": name, "password": password}
                                    ).status_code == 200  # the password was left alone
    off = adm.send_form(f"/console/admin/accounts/{name}", {"action": "deactivate"})
    assert off.status_code == 200
    after = office.login("adm").post("/api/login", json={"name": name, "password": password})
    assert after.status_code == 403


def test_a_conflict_is_settled_by_a_stamped_edit(office: Office) -> None:
    hid = fresh("G1")
    (h,) = office.put("G1", household("G1", hid, phone="13800000001"))
    conflict = {"_id": f"conflict:{uuid.uuid4()}", "type": "conflict", "grid": "G1",
                "household": hid, "path": "phone", "state": "open", "at": now_minus(1),
                "chosen": "13800000001",
                "candidates": [{"value": "13800000001", "by": "a", "at": now_minus(1),
                                "device": "d1"},
                               {"value": "13900000002", "by": "b", "at": now_minus(1.1),
                                "device": "d2"}]}
    office.put("G1", conflict)
    office.copy("G1")
    sup = office.login("sup1")
    assert conflict["_id"] in sup.get("/console/conflicts?scope=community:C1",
                                      headers=HTML).text
    r = sup.send_form(f"/console/conflict/G1/{conflict['_id']}", {"choice": "1"})
    assert r.status_code == 303, r.text
    stored = office.couch.get(office.db("G1"), f"household:{hid}")
    assert stored["phone"] == "13900000002"
    assert stored["clock"]["phone"]["by"] == office.names["sup1"]
    assert stored["clock"]["phone"]["device"] == "console"
    closed = office.couch.get(office.db("G1"), conflict["_id"])
    assert (closed["state"], closed["chosen"], closed["resolved_by"]) == (
        "resolved", "13900000002", office.names["sup1"])
    assert sup.send_form(f"/console/conflict/G1/{conflict['_id']}",
                         {"choice": "0"}).status_code == 409
    assert h["_rev"] != stored["_rev"]


def test_a_new_replica_reads_every_grid_before_anyone_asks(office: Office, couch_server,
                                                          tmp_path) -> None:
    """A replica started in the night has every grid's snapshot ready for the first page."""
    grids = {g.id for g in Directory(office.couch).grids()}
    replica = start_server(couch_server, office.couch.prefix, tmp_path / "replica",
                           {"DOORSTEP_LEASE_TTL": "6"})
    try:
        # No page is opened on this replica.
        wait_for(lambda: metric(httpx.get(replica.url + "/metrics").text,
                                "doorstep_console_cached_grids") == len(grids),
                 f"all {len(grids)} grids cached", seconds=60)
    finally:
        replica.stop()


def metric(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith(name + " "))
