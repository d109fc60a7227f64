"""A synced visit that raises an urgent need alerts the community's supervisors, once."""

from __future__ import annotations

from server.push.urgent import UrgentNeedWatcher
from sync import accounts
from sync.directory import Directory
from sync.naming import grid_db_name
from sync.push_outbox import push_db
from tests.conftest import unique_name
from tests.push.conftest import HOUSEHOLD, run_until, subscribe


def visit(vid: str, needs: list[dict]) -> dict:
    return {"_id": vid, "type": "visit", "grid": "G1", "household": "G1-3-2-502",
            "author": "w_zhang", "device": "d", "created_at": "2026-11-20T01:00:00Z",
            "visited_at": "2026-11-20T01:00:00Z", "outcome": "met", "visit_type": "sweep",
            "needs": needs}


def requests(couch) -> list[dict]:
    rows = couch.all_docs(push_db(couch), startkey="push_request:",
                          endkey="push_request:\ufff0", include_docs=True)
    return [r["doc"] for r in rows]


def test_urgent_needs_reach_the_supervisors_of_that_community_once(push, standin, make_worker):
    # Accounts live in the one _users database all tests share: communities of our own.
    mine, other = unique_name("C"), unique_name("C")
    directory = Directory(push)
    directory.add_community(mine, "桂花社区", "S1")
    directory.add_community(other, "梧桐社区", "S1")
    directory.add_grid("G1", "第一网格", mine)
    sup, sup_other = unique_name("sup"), unique_name("sup")
    accounts.create(push, sup, "supervisor", communities=[mine], password="password1")
    accounts.create(push, sup_other, "supervisor", communities=[other], password="password1")
    db = grid_db_name("G1", push.prefix)
    push.put(db, dict(HOUSEHOLD))
    push.put(db, visit("visit:old", [{"need_id": "n-old", "category": "medical",
                                       "text": "旧的", "urgent": True}]))
    watcher = UrgentNeedWatcher(push)
    assert watcher.step() == 0  # history raises no alarm

    push.put(db, visit("visit:new", [
        {"need_id": "n-gas", "category": "safety", "text": "闻到燃气味，需要马上处理",
         "urgent": True},
        {"need_id": "n-lamp", "category": "repair", "text": "楼道灯坏了", "urgent": False},
    ]))
    push.put(db, {"_id": "need_event:1", "type": "need_event", "grid": "G1",
                  "household": "G1-3-2-502", "need_id": "n-gas", "event": "raised",
                  "category": "safety", "text": "闻到燃气味，需要马上处理", "urgent": True,
                  "author": "w_zhang", "at": "2026-11-20T01:00:00Z"})
    assert watcher.step() == 1
    assert watcher.step() == 0
    req, = requests(push)
    assert (req["kind"], req["user"], req["ref"]) == ("urgent_need", sup, "visit:new")

    subscribe(push, standin, sup, "sup-phone")
    run_until(make_worker(), lambda: len(standin.delivered("sup-phone")) == 1)
    sent, = standin.delivered("sup-phone")
    assert sent.payload["title"] == "紧急诉求"
    assert sent.payload["body"] == "3栋2单元502室：闻到燃气味，需要马上处理"
    assert sent.payload["url"] == "/console/needs?state=raised"
    assert sent.headers["urgency"] == "high"
