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

_GRID_ROWS = """function (doc) {
  if (!doc.type || !doc.grid) return;
  var g = doc.grid, i, m;
  if (doc.type === 'household') {
    var tags = (doc.tags || []).slice();
    for (m in doc.members) {
      var p = doc.members[m];
      if (p.status !== 'moved_out' && p.tags) {
        for (i = 0; i < p.tags.length; i++) if (tags.indexOf(p.tags[i]) < 0) tags.push(p.tags[i]);
      }
    }
    emit([g, 'household', doc.household_id], [doc.created_at, tags,
      (doc.address || {}).building || '']);
  } else if (doc.type === 'visit') {
    emit([g, 'visit', doc.visited_at], [doc.household, doc.author, doc.outcome, doc.visit_type,
      doc.amends || null, doc.assignment || null, doc.app_version || '', doc.created_at]);
    var needs = doc.needs || [];
    for (i = 0; i < needs.length; i++) {
      emit([g, 'need', needs[i].need_id, doc.visited_at], ['raised', doc.household,
        needs[i].category, needs[i].text, !!needs[i].urgent, null, null, doc.author]);
    }
    if (doc.assignment) emit([g, 'assignment_done', doc.assignment], ['visited', doc.visited_at,
      doc.author]);
  } else if (doc.type === 'review') {
    emit([g, 'review', doc.at], [doc.visit, doc.decision, doc.author, doc.reason || '']);
  } else if (doc.type === 'need_event') {
    emit([g, 'need', doc.need_id, doc.at], [doc.event, doc.household, doc.category || null,
      doc.text || null, !!doc.urgent, doc.to || null, doc.evaluation || null, doc.author]);
  } else if (doc.type === 'assignment') {
    emit([g, 'assignment', doc.at], [doc.household, doc.worker, doc.due, doc.reason, doc.author]);
  } else if (doc.type === 'assignment_event') {
    emit([g, 'assignment_done', doc.assignment], [doc.event, doc.at, doc.author]);
  } else if (doc.type === 'conflict') {
    emit([g, 'conflict', doc.state, doc.at], [doc.household, doc.path]);
  }
}"""

_LOOKUP = """function (doc) {
  if (!doc.type) return;
  if (doc.type === 'household') {
    var a = doc.address || {}, terms = [], seen = {}, i, m;
    var add = function (t) { if (t) terms.push(String(t).toLowerCase()); };
    var phone = function (t) { if (t) { add(t); add(t.slice(-4)); } };
    add(doc.household_id);
    add(a.building + '-' + (a.unit ? a.unit + '-' : '') + a.room);
    phone(doc.phone);
    for (m in doc.members) {
      var p = doc.members[m];
      add(p.name);
      if (p.name && p.name.length > 1) add(p.name.slice(1));
      phone(p.phone);
    }
    for (i = 0; i < terms.length; i++) {
      if (!seen[terms[i]]) { seen[terms[i]] = true; emit(['term', terms[i]], [doc.grid,
        doc.household_id]); }
    }
  } else if (doc.household) {
    emit(['household', doc.household, doc.visited_at || doc.at || ''], doc.type);
  }
}"""

HUB = {
    "_id": "_design/hub",
    "language": "javascript",
    "views": {
        # The console's lists, one key range per grid and kind (sync/console_queries.py).
        # One view rather than one per kind: pouchdb-server indexes each view in its own pass.
        "grid_rows": {"map": _GRID_ROWS, "reduce": "_count"},
        # Look-ups across grids: a household's whole history, and search terms.
        "lookup": {"map": _LOOKUP},
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
