"""Believable demo communities: streets, grids, households, visits and needs, from a seed.

Everything is drawn from `random.Random`, one generator per grid seeded with (seed, grid), so
a grid's content depends only on the seed, the grid and the reference day: the same flags
give the same documents, and a county (270 grids) is generated one grid at a time in flat
memory. `ensure_demo` loads the small demo that `doorstep serve --demo` shows on first
start; `load` writes any size into CouchDB, writing only documents that are missing.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sync import accounts, naming, schema
from sync.couch import Couch
from sync.directory import DEFAULT_TAGS, Directory
from sync.provision import provision_grid

DEMO_PASSWORD = "doorstep-demo"
AREA_CODE = "330106"  # the first six digits of the demo residents' ID numbers
CENTRE = (30.274, 120.155)  # where the demo county lies, for visit GPS fixes

STREETS = ("城南街道", "城北街道", "江滨街道", "湖滨街道", "西溪街道", "东新街道")
COMMUNITIES = ("桂花社区", "梧桐社区", "香樟社区", "银杏社区", "玉兰社区", "紫荆社区", "枫林社区",
               "竹园社区", "荷塘社区", "柳岸社区", "松涛社区", "梅苑社区", "兰亭社区", "菊园社区",
               "杏花社区", "桃源社区", "海棠社区", "芙蓉社区")
COMPOUNDS = ("和平", "幸福", "阳光", "翠苑", "锦绣", "景园", "华庭", "春晖", "德苑", "新村",
             "康乐", "嘉园", "润泽", "明珠", "丽都", "金桥", "清泰", "凤起", "庆春", "文晖")
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
            "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯")
# Given names by the decade people were born in: names follow fashion.
GIVEN = {
    "old_m": ("建国", "国强", "德明", "志刚", "福生", "永福", "桂林", "文华", "振华", "荣华",
              "长根", "水根", "金海", "国庆", "建华", "树林"),
    "old_f": ("秀英", "桂英", "玉兰", "秀兰", "凤英", "桂芳", "素珍", "玉珍", "美华", "月娥",
              "翠花", "淑芬", "金凤", "彩霞", "丽华", "雪梅"),
    "mid_m": ("伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "鹏", "海波",
              "建军", "志强", "晓东"),
    "mid_f": ("芳", "娟", "敏", "静", "丽", "艳", "燕", "霞", "婷", "玲", "红梅", "晓燕",
              "海燕", "丽娟", "文静", "雪"),
    "young_m": ("浩然", "子轩", "宇航", "俊杰", "子涵", "梓豪", "一鸣", "博文", "皓轩", "思远",
                "天佑", "嘉懿", "铭泽", "奕辰", "睿", "泽宇"),
    "young_f": ("欣怡", "梓涵", "诗涵", "一诺", "雨桐", "可馨", "子萱", "佳怡", "思彤", "语嫣",
                "若汐", "梦瑶", "紫萱", "芷若", "依诺", "安琪"),
}
NEEDS = (
    ("repair", "楼道灯坏了，希望尽快维修"), ("repair", "厨房下水管漏水"),
    ("medical", "希望社区医生上门测血压"), ("medical", "需要办理慢病长处方"),
    ("elder_care", "希望申请助餐服务"), ("elder_care", "想了解居家养老上门服务"),
    ("subsidy", "咨询低保年审材料"), ("subsidy", "残疾人补贴未到账"),
    ("dispute", "楼上噪音影响休息，希望调解"), ("sanitation", "楼下垃圾清运不及时"),
    ("employment", "家人想找工作，咨询就业培训"), ("safety", "电动车在楼道充电，存在隐患"),
)
DISPATCH_TO = ("物业服务中心", "社区卫生服务站", "街道民政科", "社区居家养老服务中心",
               "城管中队", "人民调解委员会")
NOTES_MET = ("身体状况良好", "家中一切正常", "已宣传反诈知识", "已核对家庭成员信息",
             "提醒注意用电安全", "老人精神状态不错", "")
OUTCOMES = (("met", 80), ("nobody_home", 15), ("refused", 3), ("moved_away", 1))
SPECIAL = (("elderly_alone", 36), ("empty_nest", 24), ("disabled", 16), ("subsistence", 14),
           ("left_behind_child", 10))
SPECIAL_CARE_SHARE = 0.08
VACANT_SHARE = 0.04
RENTED_SHARE = 0.14


@dataclass(frozen=True)
class Spec:
    """What to generate. `communities` defaults to one per 18 grids, as in a real county."""

    seed: int = 1
    grids: int = 3
    households_per_grid: int = 380
    visit_months: int = 3
    communities: int | None = None
    first_building: int = 1
    today: date = field(default_factory=lambda: datetime.now(UTC).date())

    @property
    def community_count(self) -> int:
        return self.communities or max(1, math.ceil(self.grids / 18))


@dataclass(frozen=True)
class GridPlan:
    id: str
    name: str
    community: str
    worker: str  # account name of the grid's worker
    compound: str
    number: int  # 1-based, across the whole demo


@dataclass(frozen=True)
class Layout:
    streets: list[tuple[str, str]]  # (id, name)
    communities: list[tuple[str, str, str, str]]  # (id, name, street, supervisor account)
    grids: list[GridPlan]


@dataclass
class GridContent:
    households: list[dict[str, Any]]
    visits: list[dict[str, Any]]
    need_events: list[dict[str, Any]]
    micro_grids: list[tuple[str, str]]  # (id, name)

    def docs(self) -> list[dict[str, Any]]:
        return [*self.households, *self.visits, *self.need_events]


def layout(spec: Spec) -> Layout:
    n_comm = spec.community_count
    n_streets = max(1, math.ceil(n_comm / 5))
    streets = [(f"S{i:02d}", _numbered(STREETS, i)) for i in range(1, n_streets + 1)]
    communities = [(f"C{i:02d}", _numbered(COMMUNITIES, i), streets[(i - 1) % n_streets][0],
                    f"supervisor{i}") for i in range(1, n_comm + 1)]
    grids = []
    per_community: dict[str, int] = {}
    for n in range(1, spec.grids + 1):
        community = communities[(n - 1) * n_comm // spec.grids][0]
        per_community[community] = per_community.get(community, 0) + 1
        compound = _numbered(COMPOUNDS, n)
        grids.append(GridPlan(f"G{n:03d}", f"第{per_community[community]}网格（{compound}小区）",
                              community, f"worker{n}", compound, n))
    return Layout(streets, communities, grids)


def _numbered(names: tuple[str, ...], i: int) -> str:
    """The i-th name (1-based); past the end of the list, names get a number."""
    base = names[(i - 1) % len(names)]
    round_ = (i - 1) // len(names)
    return base if round_ == 0 else f"{base[:-2]}{round_ + 1}{base[-2:]}"


# --- people ---------------------------------------------------------------------------------


class _People:
    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.today = today
        self.serial = 0

    def person(self, surname: str, age: int, male: bool, relation: str,
               tags: list[str] | None = None, phone_chance: float = 0.85) -> dict[str, Any]:
        rng = self.rng
        year = self.today.year - age
        era = "old" if year < 1965 else "mid" if year < 1995 else "young"
        given = rng.choice(GIVEN[f"{era}_{'m' if male else 'f'}"])
        born = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        self.serial = (self.serial + 1) % 500
        seq = self.serial * 2 + (1 if male else 0)  # the 17th digit is odd for men
        body = f"{AREA_CODE}{born:%Y%m%d}{seq:03d}"
        weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
        check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
        phone = ""
        if age >= 16 and rng.random() < phone_chance:
            phone = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
        return {"name": surname + given, "relation": relation, "birth_year": year,
                "phone": phone, "id_number": body + check, "tags": tags or [],
                "status": "present"}

    def surname(self) -> str:
        return self.rng.choice(SURNAMES)


def _household_members(people: _People, kind: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(members, household-only tags) for one kind of household."""
    rng = people.rng
    s = people.surname()
    male = rng.random() < 0.5
    if kind == "elderly_alone":
        return [people.person(s, rng.randint(72, 93), male, "户主", ["elderly_alone"], 0.6)], []
    if kind == "empty_nest":
        age = rng.randint(66, 86)
        return [people.person(s, age, True, "户主", ["empty_nest"], 0.7),
                people.person(people.surname(), age - rng.randint(0, 4), False, "配偶",
                              ["empty_nest"], 0.6)], []
    if kind == "left_behind_child":
        age = rng.randint(60, 75)
        boy = rng.random() < 0.5
        return [people.person(s, age, male, "户主"),
                people.person(s, rng.randint(6, 15), boy, "孙子" if boy else "孙女",
                              ["left_behind_child"])], []
    if kind == "rented":
        head = people.person(s, rng.randint(22, 45), male, "户主", phone_chance=0.98)
        members = [head]
        if rng.random() < 0.4:
            members.append(people.person(people.surname(), rng.randint(22, 45), not male, "配偶"))
        return members, ["rental_watch"]
    members = _family(people, s)
    if kind in ("disabled", "subsistence"):
        rng.choice(members)["tags"].append(kind)
    if rng.random() < 0.03:
        members[0]["tags"].append("veteran")
    return members, []


def _family(people: _People, s: str) -> list[dict[str, Any]]:
    rng = people.rng
    age = rng.randint(28, 64)
    male = rng.random() < 0.7
    members = [people.person(s, age, male, "户主")]
    if rng.random() < 0.8:
        members.append(people.person(people.surname(), age + rng.randint(-4, 4), not male,
                                     "配偶"))
    for _ in range(rng.choice((0, 1, 1, 2)) if age < 55 else 0):
        kid_male = rng.random() < 0.5
        members.append(people.person(s, rng.randint(1, max(1, min(25, age - 22))), kid_male,
                                     "子" if kid_male else "女"))
    if rng.random() < 0.15:
        members.append(people.person(s, age + rng.randint(24, 32), True, "父亲", phone_chance=0.5))
    return members


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


# --- one grid ---------------------------------------------------------------------------------


def generate_grid(spec: Spec, grid: GridPlan, supervisor: str) -> GridContent:
    rng = random.Random(f"doorstep-demo/{spec.seed}/{grid.id}")
    people = _People(rng, spec.today)
    target = spec.households_per_grid + rng.randint(-spec.households_per_grid // 8,
                                                    spec.households_per_grid // 8)
    start = spec.today - timedelta(days=30 * spec.visit_months)
    created = f"{start - timedelta(days=rng.randint(40, 400)):%Y-%m-%d}T01:00:00Z"
    households: list[dict[str, Any]] = []
    micro_grids: list[tuple[str, str]] = []
    building = spec.first_building
    in_micro_grid = 0
    while len(households) < target:
        floors, units, per_floor = rng.choice(((6, 2, 2), (6, 3, 2), (7, 2, 2), (11, 2, 2),
                                               (18, 2, 2)))
        # A micro-grid is one building, or small buildings together: 30–100 households.
        if not micro_grids or in_micro_grid >= 30:
            micro_grids.append((f"{grid.id}-M{len(micro_grids) + 1:02d}",
                                f"{grid.compound}{building}幢"))
            in_micro_grid = 0
        else:
            mid, name = micro_grids[-1]
            micro_grids[-1] = (mid, f"{name[:-1]}、{building}幢")
        mid = micro_grids[-1][0]
        for unit in range(1, units + 1):
            for floor in range(1, floors + 1):
                for door in range(1, per_floor + 1):
                    if len(households) < target:
                        households.append(_household(people, grid, mid, created,
                                                     str(building), str(unit), floor,
                                                     f"{floor}{door:02d}"))
                        in_micro_grid += 1
        building += 1
    visits, events = _history(rng, spec, grid, supervisor, households, start)
    return GridContent(households, visits, events, micro_grids)


def _household(people: _People, grid: GridPlan, micro_grid: str, created: str, building: str,
               unit: str, floor: int, room: str) -> dict[str, Any]:
    rng = people.rng
    r = rng.random()
    if r < VACANT_SHARE:
        kind = "vacant"
    elif r < VACANT_SHARE + SPECIAL_CARE_SHARE:
        kind = _pick(rng, SPECIAL)
    elif r < VACANT_SHARE + SPECIAL_CARE_SHARE + RENTED_SHARE:
        kind = "rented"
    else:
        kind = "family"
    members, own_tags = ([], []) if kind == "vacant" else _household_members(people, kind)
    tags = set(own_tags) | {t for m in members for t in m["tags"]}
    hid = f"{grid.id}-{building}-{unit}-{room}"
    head_phone = next((m["phone"] for m in members if m["phone"]), "")
    return {
        "_id": f"household:{hid}", "type": "household", "grid": grid.id, "household_id": hid,
        "micro_grid": micro_grid,
        "address": {"building": building, "unit": unit, "floor": floor, "room": room},
        "housing": {"vacant": "vacant", "rented": "rented"}.get(kind, "owner"),
        "residency": "floating" if kind == "rented" else "registered",
        "tags": [t for t in DEFAULT_TAGS["tags"] if t in tags],
        "phone": head_phone, "note": "",
        "members": {f"m{i}": m for i, m in enumerate(members, 1)},
        "clock": {}, "created_at": created, "updated_at": created,
    }


def is_special_care(household: dict[str, Any]) -> bool:
    return any(DEFAULT_TAGS["tags"][t]["special_care"] for t in household["tags"])


def _history(rng: random.Random, spec: Spec, grid: GridPlan, supervisor: str,
             households: list[dict[str, Any]], start: date
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Visits from `start` to today: quarterly sweeps, monthly special care, revisits."""
    visits: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    lat = CENTRE[0] + (grid.number % 20 - 10) * 0.004
    lon = CENTRE[1] + (grid.number // 20 - 7) * 0.004
    span = (spec.today - start).days
    for h in households:
        special = is_special_care(h)
        every = (24, 31) if special else (80, 91)
        # The first visit falls inside the period, so everyone is seen each quarter.
        day = start + timedelta(days=rng.randrange(max(1, min(every[1], span))))
        while day < spec.today and span > 0:
            if h["housing"] == "vacant":
                outcome = "vacant"
            else:
                outcome = _pick(rng, OUTCOMES)
            kind = "special_care" if special else "sweep"
            visit = _visit(rng, grid, h, _at(rng, day), outcome, kind, lat, lon)
            visits.append(visit)
            if outcome == "nobody_home":
                again = day + timedelta(days=rng.randint(2, 6))
                if again < spec.today:
                    visits.append(_visit(rng, grid, h, _at(rng, again), _pick(rng, OUTCOMES[:3]),
                                         "follow_up", lat, lon))
            if outcome == "met" and rng.random() < 0.03:
                events += _need(rng, spec, grid, supervisor, h, visit)
            day += timedelta(days=rng.randint(*every))
    visits.sort(key=lambda v: v["visited_at"])
    return visits, events


def _at(rng: random.Random, day: date) -> datetime:
    """Working hours in China (UTC+8), Monday to Saturday morning."""
    if day.weekday() == 6:
        day -= timedelta(days=1)
    hour = rng.randint(9, 11) if day.weekday() == 5 else rng.choice((9, 10, 11, 14, 15, 16, 17))
    local = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60))
    return local - timedelta(hours=8)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _visit(rng: random.Random, grid: GridPlan, h: dict[str, Any], at: datetime, outcome: str,
           kind: str, lat: float, lon: float) -> dict[str, Any]:
    return {
        "_id": f"visit:{_uuid(rng)}", "type": "visit", "grid": grid.id,
        "household": h["household_id"], "author": grid.worker, "device": f"demo-{grid.worker}",
        "created_at": _iso(at), "visited_at": _iso(at), "outcome": outcome, "visit_type": kind,
        "notes": rng.choice(NOTES_MET) if outcome == "met" else "", "needs": [],
        "ledger_changes": [],
        "gps": {"lat": round(lat + rng.uniform(-0.002, 0.002), 6),
                "lon": round(lon + rng.uniform(-0.002, 0.002), 6),
                "accuracy": float(rng.randint(5, 40))},
        "assignment": None, "amends": None, "app_version": "0.1.0",
    }


def _need(rng: random.Random, spec: Spec, grid: GridPlan, supervisor: str, h: dict[str, Any],
          visit: dict[str, Any]) -> list[dict[str, Any]]:
    """A need raised at the door, carried along its loop as far as its age allows."""
    category, text = rng.choice(NEEDS)
    need_id = _uuid(rng)
    urgent = rng.random() < 0.1
    visit["needs"].append({"need_id": need_id, "category": category, "text": text,
                           "urgent": urgent})
    at = datetime.fromisoformat(visit["visited_at"].replace("Z", "+00:00")).replace(tzinfo=None)
    now = datetime(spec.today.year, spec.today.month, spec.today.day, 12)
    base = {"type": "need_event", "grid": grid.id, "household": h["household_id"],
            "need_id": need_id}
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("raised", grid.worker, {"category": category, "text": text, "urgent": urgent,
                                 "visit": visit["_id"]}),
        ("dispatched", supervisor, {"to": rng.choice(DISPATCH_TO)}),
        ("claimed", grid.worker, {}),
        ("resolved", grid.worker, {"note": "已处理完毕"}),
        ("evaluated", grid.worker, {"evaluation": _pick(rng, (("satisfied", 80),
                                    ("basically_satisfied", 15), ("unsatisfied", 5)))}),
        ("closed", supervisor, {}),
    ]
    events = []
    for event, author, extra in steps:
        if at > now:
            break
        events.append({"_id": f"need_event:{_uuid(rng)}", **base, "event": event,
                       "author": author, "at": _iso(at), **extra})
        at += timedelta(hours=rng.randint(4, 96))
    return events


# --- writing into CouchDB ----------------------------------------------------------------------


@dataclass
class LoadReport:
    grids: int = 0
    households: int = 0
    visits: int = 0
    need_events: int = 0
    written: int = 0  # documents that were missing and got written


def write_directory(couch: Couch, lay: Layout, micro_grids: dict[str, list[tuple[str, str]]]
                    ) -> None:
    """Directory entries, communities last: a community appears once its grids are there."""
    d = Directory(couch)
    for sid, name in lay.streets:
        d.add_street(sid, name)
    for g in lay.grids:
        d.add_grid(g.id, g.name, g.community)
        for mid, name in micro_grids.get(g.id, []):
            d.add_micro_grid(mid, name, g.id)
    for cid, name, street, _ in lay.communities:
        d.add_community(cid, name, street)


def load(couch: Couch, spec: Spec, *, with_accounts: bool = True,
         on_grid: Callable[[GridPlan, LoadReport], None] = lambda g, r: None) -> LoadReport:
    """Generate and write a demo; documents already stored are left alone (so a rerun or a
    resumed run writes only what is missing). Accounts get the demo password."""
    lay = layout(spec)
    report, micro = _write_grids(couch, spec, lay, on_grid)
    if with_accounts:
        _create_accounts(couch, lay)
    write_directory(couch, lay, micro)
    return report


def load_directory(couch: Couch, spec: Spec, *, with_accounts: bool = True) -> None:
    """Only the hierarchy (and empty grid databases): what a ledger of `spec` imports into."""
    lay = layout(spec)
    tags = Directory(couch).tag_config()
    micro = {}
    for grid, content in ledgers(spec):
        provision_grid(couch, grid.id, tags)
        micro[grid.id] = content.micro_grids
    if with_accounts:
        _create_accounts(couch, lay)
    write_directory(couch, lay, micro)


def _create_accounts(couch: Couch, lay: Layout) -> None:
    for grid in lay.grids:
        accounts.create(couch, grid.worker, "worker", password=DEMO_PASSWORD,
                        display_name=f"网格员{grid.number}", grids=[grid.id])
    for cid, name, _, sup in lay.communities:
        accounts.create(couch, sup, "supervisor", password=DEMO_PASSWORD,
                        display_name=f"{name}社工", communities=[cid])


def _write_grids(couch: Couch, spec: Spec, lay: Layout,
                 on_grid: Callable[[GridPlan, LoadReport], None] = lambda g, r: None
                 ) -> tuple[LoadReport, dict[str, list[tuple[str, str]]]]:
    tags = Directory(couch).tag_config()
    supervisors = {c[0]: c[3] for c in lay.communities}
    report = LoadReport()
    micro: dict[str, list[tuple[str, str]]] = {}

    def one(grid: GridPlan) -> tuple[GridContent, int]:
        content = generate_grid(spec, grid, supervisors[grid.community])
        provision_grid(couch, grid.id, tags)
        db = naming.grid_db_name(grid.id, couch.prefix)
        return content, write_missing(couch, db, content.docs())

    # Two grids at a time: one is generated while CouchDB stores the other.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-grid") as pool:
        for grid, (content, written) in zip(lay.grids, pool.map(one, lay.grids), strict=True):
            micro[grid.id] = [*content.micro_grids]
            report.written += written
            report.grids += 1
            report.households += len(content.households)
            report.visits += len(content.visits)
            report.need_events += len(content.need_events)
            on_grid(grid, report)
    return report, micro


def write_missing(couch: Couch, db: str, docs: list[dict[str, Any]], batch: int = 1000) -> int:
    """Write the documents the database does not have yet; returns how many."""
    # One listing of the grid's ids (a few thousand at most) beats looking each batch up.
    have = {r["id"] for r in couch.all_docs(db)}
    fresh = schema.validate_all([d for d in docs if d["_id"] not in have])
    for i in range(0, len(fresh), batch):
        couch.bulk_docs(db, fresh[i:i + batch])
    return len(fresh)


# --- the demo `doorstep serve --demo` loads ----------------------------------------------------

DEMO = Spec(seed=2026, grids=3, households_per_grid=380, visit_months=3)


@dataclass(frozen=True)
class DemoAccount:
    name: str
    role: str
    display_name: str
    grids: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()


def demo_accounts(lay: Layout) -> list[DemoAccount]:
    g = [grid.id for grid in lay.grids]
    community = lay.communities[0][0]
    return [
        DemoAccount("worker1", "worker", "王芳", (g[0],)),
        DemoAccount("worker2", "worker", "李强", (g[1],)),
        DemoAccount("worker3", "worker", "赵敏", (g[2],)),
        DemoAccount("cover1", "worker", "陈静（顶班）", (g[1], g[2])),
        DemoAccount("supervisor1", "supervisor", "孙丽", communities=(community,)),
        DemoAccount("admin", "admin", "管理员"),
    ]


def ensure_demo(couch: Couch, spec: Spec | None = None) -> list[str]:
    """Load the demo community once; say what was loaded and how to log in."""
    spec = spec or DEMO
    lay = layout(spec)
    directory = Directory(couch)
    first_community = lay.communities[0][0]
    if couch.get(directory.db, f"community:{first_community}") is not None:
        return ["demo already loaded (accounts: `doorstep user list`)"]
    if directory.grids() and not any(g.id == lay.grids[0].id for g in directory.grids()):
        return ["demo not loaded: the directory already holds other grids"]
    report, micro = _write_grids(couch, spec, lay)
    people = demo_accounts(lay)
    for a in people:
        accounts.create(couch, a.name, a.role, password=DEMO_PASSWORD,
                        display_name=a.display_name, grids=list(a.grids),
                        communities=list(a.communities))
    write_directory(couch, lay, micro)  # last: the community entry marks the demo as loaded
    street, community = lay.streets[0][1], lay.communities[0][1]
    lines = [
        f"demo loaded: {street} {community}, grids {', '.join(g.id for g in lay.grids)}: "
        f"{report.households} households, {report.visits} visits, "
        f"{report.need_events} need events",
        f"demo accounts (password {DEMO_PASSWORD}):",
    ]
    for a in people:
        scope = ", ".join(a.grids or a.communities) or "everything"
        lines.append(f"  {a.name:<12} {a.role:<10} {scope:<16} {a.display_name}")
    return lines


def ledgers(spec: Spec) -> Iterator[tuple[GridPlan, GridContent]]:
    """Each grid's households (no visit history), for writing a ledger spreadsheet."""
    lay = layout(spec)
    supervisors = {c[0]: c[3] for c in lay.communities}
    for grid in lay.grids:
        yield grid, generate_grid(replace(spec, visit_months=0), grid, supervisors[grid.community])
