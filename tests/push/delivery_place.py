"""A street with communities A (grids a1, a2) and B (grid b1) under ids of its own, and its
people: `_users` is shared by the whole test session, and other tests' workers hold grids
named G1, G2, G9, so figures that count the people of a scope need grids nobody else has."""

from __future__ import annotations

from dataclasses import dataclass, field

from sync import accounts
from sync.couch import Couch
from sync.directory import Directory
from sync.provision import provision
from tests.conftest import unique_name

PASSWORD = "password1"


@dataclass(frozen=True)
class Place:
    street: str
    a: str
    b: str
    a1: str
    a2: str
    b1: str
    users: dict[str, str] = field(default_factory=dict)  # key → unique user name

    def id(self, key: str) -> str:
        """The real id behind a short key: "a" → community A, "b1" → grid b1."""
        return getattr(self, key)


def make_place(couch: Couch,
               people: dict[str, tuple[str, list[str], list[str]]]) -> Place:
    """The hierarchy, and accounts `key: (role, grid keys, community keys)`."""
    tag = unique_name("")
    p = Place(f"S{tag}", f"A{tag}", f"B{tag}", f"GA1{tag}", f"GA2{tag}", f"GB1{tag}")
    d = Directory(couch)
    d.add_street(p.street, "城南街道")
    d.add_community(p.a, "桂花社区", p.street)
    d.add_community(p.b, "梧桐社区", p.street)
    d.add_grid(p.a1, "一网格", p.a)
    d.add_grid(p.a2, "二网格", p.a)
    d.add_grid(p.b1, "九网格", p.b)
    provision(couch)
    for key, (role, grids, communities) in people.items():
        p.users[key] = unique_name(key)
        accounts.create(couch, p.users[key], role, password=PASSWORD,
                        grids=[p.id(g) for g in grids],
                        communities=[p.id(c) for c in communities],
                        display_name=f"{key} 测试")
    return p
