"""The console's decisions in server/authz.py: who may use it, administer, move households."""

from server import authz
from sync.directory import Grid

A1 = Grid("G1", "一", "C1", "g_g1")
A2 = Grid("G2", "二", "C1", "g_g2")
B9 = Grid("G9", "九", "C2", "g_g9")
SUP = authz.Principal("sup", "孙丽", "supervisor", communities=frozenset({"C1"}))
ADMIN = authz.Principal("root", "管理员", "admin")
WORKER = authz.Principal("w1", "王芳", "worker", grids=frozenset({"G1"}))
GONE = authz.Principal("old", "旧", "supervisor", communities=frozenset({"C1"}), active=False)


def test_only_active_supervisors_and_admins_use_the_console() -> None:
    assert authz.can_use_console(SUP) is None and authz.can_use_console(ADMIN) is None
    assert authz.can_use_console(WORKER)
    assert authz.can_use_console(GONE)


def test_only_admins_administer() -> None:
    assert authz.can_administer(ADMIN) is None
    assert authz.can_administer(SUP) == "only an administrator may do this"
    assert authz.can_administer(WORKER)


def test_moves_stay_within_what_one_may_write() -> None:
    assert authz.can_move_household(SUP, A1, A2) is None
    assert authz.can_move_household(SUP, A1, B9) == "grid G9 is not yours"
    assert authz.can_move_household(SUP, B9, A1) == "grid G9 is not yours"
    assert authz.can_move_household(ADMIN, A1, B9) is None
    assert authz.can_move_household(WORKER, A1, A1)
