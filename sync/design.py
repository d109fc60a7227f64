"""Design documents (views) for each kind of database. Provisioning keeps them up to date.

No `validate_doc_update` anywhere: on pouchdb-server it silently drops replicated history,
and validation is the gateway's job (see FACTS.md).
"""

from __future__ import annotations

from typing import Any

GRID = {
    "_id": "_design/grid",
    "language": "javascript",
    "views": {
        "by_type": {
            "map": "function (doc) { if (doc.type) emit(doc.type, null); }",
            "reduce": "_count",
        },
        "households_by_address": {
            "map": "function (doc) { if (doc.type === 'household') emit([doc.address.building,"
            " doc.address.unit || '', doc.address.floor, doc.address.room], null); }",
        },
        "visits_by_household": {
            "map": "function (doc) { if (doc.type === 'visit') emit([doc.household,"
            " doc.visited_at], doc.outcome); }",
        },
        "visits_by_time": {
            "map": "function (doc) { if (doc.type === 'visit') emit(doc.visited_at,"
            " [doc.household, doc.author, doc.outcome]); }",
        },
        "needs": {
            "map": "function (doc) { if (doc.type === 'need_event') emit([doc.need_id, doc.at],"
            " doc.event); }",
        },
        "reviews_by_visit": {
            "map": "function (doc) { if (doc.type === 'review') emit(doc.visit, doc.decision); }",
        },
        "assignments_by_worker": {
            "map": "function (doc) { if (doc.type === 'assignment') emit([doc.worker, doc.due],"
            " doc.household); }",
        },
        "open_conflicts": {
            "map": "function (doc) { if (doc.type === 'conflict' && doc.state === 'open')"
            " emit(doc.household, doc.path); }",
        },
        "audit_by_household": {
            "map": "function (doc) { if (doc.type === 'audit') emit([doc.household, doc.at],"
            " doc.source); }",
        },
    },
}

HUB = {
    "_id": "_design/hub",
    "language": "javascript",
    "views": {
        "by_grid_type": {
            "map": "function (doc) { if (doc.type && doc.grid) emit([doc.grid, doc.type], null); }",
            "reduce": "_count",
        },
        "visits_by_grid_time": {
            "map": "function (doc) { if (doc.type === 'visit') emit([doc.grid, doc.visited_at],"
            " [doc.household, doc.author, doc.outcome]); }",
        },
    },
}

DIRECTORY = {
    "_id": "_design/directory",
    "language": "javascript",
    "views": {
        "children": {
            "map": "function (doc) { var p = doc.street || doc.community || doc.grid;"
            " if (doc.type && doc.name) emit([doc.type, p || null], doc.name); }",
        },
    },
}

SESSIONS = {
    "_id": "_design/sessions",
    "language": "javascript",
    "views": {
        "by_user": {"map": "function (doc) { if (doc.user) emit(doc.user, null); }"},
    },
}


def same(stored: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    if stored is None:
        return False
    return all(stored.get(k) == v for k, v in wanted.items() if k != "_id")
