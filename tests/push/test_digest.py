"""The digest's counts: the field app's due rule, in Python, on known data."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from server.push.config import PushConfig
from server.push.digest_job import DigestJob
from sync import accounts, demo
from sync.couch import Couch
from sync.digest import Digest, count, due_date, grid_digest, status
from sync.directory import DEFAULT_TAGS
from sync.naming import grid_db_name
from sync.push_outbox import ensure_push_db, iso, push_db
from tests.push.conftest import run_until, subscribe
from tests.push.standin import PushStandin

SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIG = {"_id": "config:tags", **DEFAULT_TAGS}
TODAY = date(2026, 11, 25)  # a Wednesday: this week runs to Sunday 29 November
DUE_JS = Path(__file__).resolve().parents[2] / "pwa" / "js" / "due.js"
NODE_ENV = {"TZ": "Asia/Shanghai", "PATH": os.environ.get("PATH", "/usr/bin")}


def household(hid: str, tags: list[str] = (), member_tags: list[str] = (),
              moved_out: bool = False) -> dict:
    return {"_id": f"household:{hid}", "type": "household", "grid": "G1", "household_id": hid,
            "address": {"building": "1", "floor": 1, "room": "101"}, "housing": "owner",
            "residency": "registered", "tags": list(tags), "clock": {},
            "members": {"m1": {"name": "甲", "status": "moved_out" if moved_out else "present",
                               "tags": list(member_tags)}},
            "created_at": "2026-01-01T00:00:00Z"}


def test_the_rule_of_the_field_app():
    plain, alone = household("a"), household("b", ["elderly_alone"])
    # Quarterly by default; a special-care tag (30 days) shortens it, also on a member.
    assert due_date(plain, ("2026-09-01T02:00:00Z", "met"), CONFIG, SHANGHAI) == date(2026, 12, 1)
    assert due_date(alone, ("2026-11-01T02:00:00Z", "met"), CONFIG, SHANGHAI) == date(2026, 12, 1)
    member = household("c", member_tags=["disabled"])
    assert due_date(member, ("2026-11-01T02:00:00Z", "met"), CONFIG, SHANGHAI) == date(2026, 12, 1)
    gone = household("d", member_tags=["disabled"], moved_out=True)
    assert due_date(gone, ("2026-11-01T02:00:00Z", "met"), CONFIG, SHANGHAI) == date(2027, 1, 31)
    # Nobody home: back within a week. A late-evening UTC time is the next local day.
    assert due_date(plain, ("2026-11-20T17:00:00Z", "nobody_home"), CONFIG, SHANGHAI) == date(
        2026, 11, 28)
    assert due_date(plain, None, CONFIG, SHANGHAI) is None
    assert status(None, TODAY) == "overdue"
    assert status(date(2026, 11, 24), TODAY) == "overdue"
    assert status(date(2026, 11, 25), TODAY) == "week"
    assert status(date(2026, 11, 29), TODAY) == "week"
    assert status(date(2026, 11, 30), TODAY) == "later"


def test_counts_of_a_known_grid():
    households = [
        household("never"),                                     # overdue: never visited
        household("late", ["elderly_alone"]),                   # overdue, special care
        household("soon", ["subsistence"]),                     # this week, special care
        household("retry"),                                     # this week (revisit)
        household("fine", ["elderly_alone"]),                   # later
        household("done"),                                      # later
    ]
    last = {
        "late": ("2026-10-01T01:00:00Z", "met"),
        "soon": ("2026-10-29T01:00:00Z", "met"),
        "retry": ("2026-11-20T01:00:00Z", "refused"),
        "fine": ("2026-11-24T01:00:00Z", "met"),
        "done": ("2026-11-01T01:00:00Z", "met"),
    }
    assert count(households, last, CONFIG, TODAY, SHANGHAI) == Digest(
        due_this_week=2, overdue=2, special_care=2)


def test_python_and_the_field_app_agree_on_random_households():
    """The same households through pwa/js/due.js in Node and through sync/digest.py."""
    rng = random.Random(7)
    tags = list(CONFIG["tags"])
    cases = []
    for i in range(300):
        h = household(f"h{i}", rng.sample(tags, rng.randint(0, 2)),
                      rng.sample(tags, rng.randint(0, 1)), moved_out=rng.random() < 0.2)
        visit = None
        if rng.random() < 0.85:
            at = datetime.fromtimestamp(rng.uniform(1756684800, 1764547200), SHANGHAI)
            visit = {"visited_at": at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "outcome": rng.choice(["met", "nobody_home", "refused", "vacant"])}
        cases.append({"household": h, "visits": [visit] if visit else []})
    script = f"""
      import {{ schedule, dueStatus }} from {json.dumps(DUE_JS.as_uri())};
      const cases = JSON.parse(process.argv[1]);
      const config = JSON.parse(process.argv[2]);
      console.log(JSON.stringify(cases.map((c) => {{
        const s = schedule(c.household, c.visits, config);
        return [s.due, dueStatus(s.due, {json.dumps(TODAY.isoformat())})];
      }})));
    """
    out = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(cases),
                          json.dumps(CONFIG)], capture_output=True, text=True, check=True,
                         env=NODE_ENV)
    js = json.loads(out.stdout)
    for case, (js_due, js_status) in zip(cases, js, strict=True):
        v = case["visits"][0] if case["visits"] else None
        due = due_date(case["household"], (v["visited_at"], v["outcome"]) if v else None,
                       CONFIG, SHANGHAI)
        assert (due.isoformat() if due else None, status(due, TODAY)) == (js_due, js_status)


def seed_grid(couch: Couch) -> None:
    db = grid_db_name("G1", couch.prefix)
    docs = [household("never"), household("late", ["elderly_alone"]), household("fine")]
    docs.append({"_id": "visit:1", "type": "visit", "grid": "G1", "household": "late",
                 "author": "w_zhang", "device": "d", "created_at": "2026-10-01T01:00:00Z",
                 "visited_at": "2026-10-01T01:00:00Z", "outcome": "met",
                 "visit_type": "sweep"})
    docs.append({"_id": "visit:2", "type": "visit", "grid": "G1", "household": "fine",
                 "author": "w_zhang", "device": "d", "created_at": "2026-11-24T01:00:00Z",
                 "visited_at": "2026-11-24T01:00:00Z", "outcome": "met",
                 "visit_type": "sweep"})
    couch.bulk_docs(db, docs)


def test_a_grid_database_is_counted_from_its_documents(push):
    seed_grid(push)
    assert grid_digest(push, "G1", TODAY, SHANGHAI) == Digest(0, 2, 1)


def test_the_scheduler_writes_one_digest_per_subscribed_worker_at_the_set_time(
        push, standin, make_worker):
    seed_grid(push)
    accounts.create(push, "w_zhang", "worker", grids=["G1"], password="password1")
    accounts.create(push, "w_idle", "worker", grids=["G2"], password="password1")
    accounts.create(push, "w_nophone", "worker", grids=["G1"], password="password1")
    subscribe(push, standin, "w_zhang", "phone")
    subscribe(push, standin, "w_idle", "phone2")  # G2 is empty: nothing to say
    job = DigestJob(push, PushConfig())
    at = datetime(2026, 11, 25, 7, 59, tzinfo=SHANGHAI)
    assert job.step(now=at) == 0  # not yet
    assert job.step(now=at.replace(hour=8, minute=0)) == 1
    assert job.step(now=at.replace(hour=9)) == 0  # once a day, also after a restart
    request = push.get(push_db(push), "push_request:digest:w_zhang:2026-11-25")
    assert request["counts"] == {"due": 0, "overdue": 2, "special_care": 1}
    assert push.get(push_db(push), "push_request:digest:w_idle:2026-11-25") is None
    assert push.get(push_db(push), "push_request:digest:w_nophone:2026-11-25") is None
    # Down all morning: a digest after noon would only annoy.
    assert job.step(now=datetime(2026, 11, 26, 12, 30, tzinfo=SHANGHAI)) == 0

    # Digests are written with today's time when they run for real; this one is from the
    # past, so give it a fresh time before the worker (which drops stale requests) sees it.
    request["at"] = iso(time.time())
    push.put(push_db(push), request)
    run_until(make_worker(), lambda: len(standin.delivered("phone")) == 1)
    sent, = standin.delivered("phone")
    assert sent.payload["body"] == "本周到期 0 户，逾期 2 户，特殊人群 1 户"
    assert sent.payload["url"] == "/app/#/due" and sent.headers["topic"] == "digest"


COUNT_JS = """
  import { dueStatus, isSpecialCare, schedule } from %s;
  let input = '';
  process.stdin.on('data', (c) => { input += c; });
  process.stdin.on('end', () => {
    const { households, visits, config, today } = JSON.parse(input);
    const byHousehold = {};
    for (const v of visits) (byHousehold[v.household] ||= []).push(v);
    const out = { due: 0, overdue: 0, special_care: 0 };
    for (const h of households) {
      const s = dueStatus(schedule(h, byHousehold[h.household_id] || [], config).due, today);
      if (s === 'later') continue;
      if (s === 'week') out.due += 1; else out.overdue += 1;
      if (isSpecialCare(h, config)) out.special_care += 1;
    }
    console.log(JSON.stringify(out));
  });
"""


def test_the_demo_communitys_digests_match_what_the_phones_show(couch):
    """The demo (as `doorstep serve --demo` loads it) on a fixed day: each worker's digest is
    what the field app's own rule counts over the same documents, a worker covering two grids
    gets both, and the demo has something of each kind to say."""
    push = couch
    ensure_push_db(push)
    spec = replace(demo.DEMO, today=TODAY)
    assert demo.ensure_demo(push, spec)[0].startswith("demo loaded")
    lay = demo.layout(spec)
    phones = {}
    for grid in lay.grids:
        db = grid_db_name(grid.id, push.prefix)
        docs = [r["doc"] for r in push.all_docs(db, include_docs=True)]
        payload = {"households": [d for d in docs if d.get("type") == "household"],
                   "visits": [d for d in docs if d.get("type") == "visit"],
                   "config": push.get(db, "config:tags"), "today": TODAY.isoformat()}
        out = subprocess.run(["node", "--input-type=module", "-e",
                              COUNT_JS % json.dumps(DUE_JS.as_uri())],
                             input=json.dumps(payload), capture_output=True, text=True,
                             check=True, env=NODE_ENV)
        js = json.loads(out.stdout)
        phones[grid.id] = Digest(js["due"], js["overdue"], js["special_care"])
        assert grid_digest(push, grid.id, TODAY, SHANGHAI) == phones[grid.id]
    assert all(d.due_this_week and d.overdue and d.special_care for d in phones.values())

    with PushStandin() as standin:
        for account in demo.demo_accounts(lay):
            subscribe(push, standin, account.name, f"phone-{account.name}")
    job = DigestJob(push, PushConfig())
    written = job.step(now=datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI))
    assert written == 4  # the four workers; the supervisor and the admin get no digest
    g1, g2, g3 = (g.id for g in lay.grids)

    def counts(user: str) -> dict:
        return push.get(push_db(push), f"push_request:digest:{user}:2026-11-25")["counts"]

    def expected(*grids: str) -> dict:
        total = sum((phones[g] for g in grids), Digest())
        return {"due": total.due_this_week, "overdue": total.overdue,
                "special_care": total.special_care}

    assert counts("worker1") == expected(g1)
    assert counts("worker3") == expected(g3)
    assert counts("cover1") == expected(g2, g3)
