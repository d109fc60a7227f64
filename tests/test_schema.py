"""One rejection per schema rule: each names the field and the rule a person must fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sync.schema import SchemaError, validate


def household(**over: Any) -> dict[str, Any]:
    doc = {
        "_id": "household:G1-3-2-502",
        "type": "household",
        "grid": "G1",
        "household_id": "G1-3-2-502",
        "micro_grid": "G1-M1",
        "address": {"building": "3", "unit": "2", "floor": 5, "room": "502"},
        "housing": "owner",
        "residency": "registered",
        "tags": ["elderly_alone"],
        "phone": "13800138000",
        "note": "",
        "members": {
            "m1": {"name": "王秀英", "relation": "户主", "birth_year": 1941, "phone": "",
                   "id_number": "11010519491231002X", "tags": [], "status": "present"},
        },
        "clock": {"phone": {"vv": {"dev-a": 2}, "at": "2026-11-20T09:12:00Z",
                            "by": "w_zhang", "device": "dev-a"}},
        "created_at": "2026-09-01T00:00:00Z",
    }
    doc.update(over)
    return doc


def visit(**over: Any) -> dict[str, Any]:
    doc = {
        "_id": "visit:0b1c", "type": "visit", "grid": "G1", "household": "G1-3-2-502",
        "author": "w_zhang", "device": "dev-a", "created_at": "2026-11-20T09:12:00Z",
        "visited_at": "2026-11-20T09:10:00Z", "outcome": "met", "visit_type": "sweep",
        "notes": "", "needs": [{"need_id": "n1", "category": "medical", "text": "需要上门体检"}],
        "ledger_changes": [{"path": "phone", "old": "", "new": "13800138000"}],
        "gps": {"lat": 30.27, "lon": 120.15, "accuracy": 12.0},
    }
    doc.update(over)
    return doc


def rejects(doc: Any, field: str, words: str) -> None:
    with pytest.raises(SchemaError) as err:
        validate(doc)
    assert err.value.field == field
    assert words in err.value.rule


def test_valid_documents_pass() -> None:
    assert validate(household())["household_id"] == "G1-3-2-502"
    assert validate(visit())["outcome"] == "met"
    assert validate({"_id": "visit:x", "_rev": "2-a", "_deleted": True})


def test_unknown_type() -> None:
    rejects(household(type="person"), "type", "must be one of")
    rejects([1, 2], "(document)", "JSON object")


def test_id_must_match_type_and_key() -> None:
    rejects(household(_id="visit:G1-3-2-502"), "_id", "must start with 'household:'")
    rejects(household(_id="household:other"), "_id", "followed by household_id")


def test_required_field() -> None:
    doc = household()
    del doc["housing"]
    rejects(doc, "housing", "is required")


def test_unknown_field() -> None:
    rejects(household(colour="blue"), "colour", "is not a known field")


def test_enumerations() -> None:
    rejects(household(housing="castle"), "housing", "owner, rented, vacant")
    rejects(household(residency="tourist"), "residency", "registered, floating")
    rejects(visit(outcome="maybe"), "outcome", "met, nobody_home")
    rejects(visit(visit_type="party"), "visit_type", "sweep")


def test_phone_numbers() -> None:
    rejects(household(phone="12345"), "phone", "11-digit mobile")
    assert validate(household(phone="0571-87654321"))


def test_id_number_format_check_digit_and_birth_date() -> None:
    def with_id(number: str) -> dict[str, Any]:
        doc = household()
        doc["members"]["m1"]["id_number"] = number
        return doc

    rejects(with_id("1101051949"), "members.m1.id_number", "18-character")
    rejects(with_id("110105194912310028"), "members.m1.id_number", "check digit")
    rejects(with_id("110105194913310021"), "members.m1.id_number", "impossible birth date")


def test_member_rules() -> None:
    doc = household()
    doc["members"]["m1"]["birth_year"] = 1800
    rejects(doc, "members.m1.birth_year", "between 1900")
    doc = household()
    doc["members"]["m1"]["status"] = "gone"
    rejects(doc, "members.m1.status", "present, moved_out")
    doc = household()
    doc["members"]["m1"]["name"] = "  "
    rejects(doc, "members.m1.name", "must not be empty")


def test_address_rules() -> None:
    doc = household()
    doc["address"]["floor"] = "five"
    rejects(doc, "address.floor", "whole number")
    doc = household()
    del doc["address"]["building"]
    rejects(doc, "address.building", "is required")


def test_tags_are_keys_without_repeats() -> None:
    rejects(household(tags=["独居"]), "tags", "list of tag keys")
    rejects(household(tags=["a", "a"]), "tags", "must not repeat")


def test_clock_stamps() -> None:
    doc = household()
    doc["clock"]["colour"] = copy.deepcopy(doc["clock"]["phone"])
    rejects(doc, "clock.colour", "names no editable field")
    doc = household()
    doc["clock"]["phone"]["vv"] = {"dev-a": 0}
    rejects(doc, "clock.phone.vv", "positive counters")
    doc = household()
    doc["clock"]["phone"]["at"] = "yesterday"
    rejects(doc, "clock.phone.at", "ISO 8601")


def test_visit_parts() -> None:
    rejects(visit(needs=[{"need_id": "n1", "text": "x"}]), "needs.0.category", "is required")
    rejects(visit(gps={"lat": 120, "lon": 30, "accuracy": 5}), "gps.lat", "between -90")
    big = {"photo.jpg": {"content_type": "image/jpeg", "length": 300_000, "stub": True}}
    rejects(visit(_attachments=big), "_attachments.photo.jpg", "200 KB")
    other = {"x.pdf": {"content_type": "application/pdf", "length": 10, "stub": True}}
    rejects(visit(_attachments=other), "_attachments.x.pdf", "only photo.jpg")


def test_event_rules() -> None:
    base = {"_id": "need_event:1", "type": "need_event", "grid": "G1", "household": "h1",
            "need_id": "n1", "author": "w", "at": "2026-11-20T09:12:00Z"}
    rejects({**base, "event": "raised"}, "category", "required when a need is raised")
    rejects({**base, "event": "dispatched"}, "to", "person or a unit")
    review = {"_id": "review:1", "type": "review", "grid": "G1", "household": "h1",
              "visit": "visit:1", "decision": "returned", "author": "s",
              "at": "2026-11-20T09:12:00Z"}
    rejects(review, "reason", "required when a visit is returned")
    assignment = {"_id": "assignment:1", "type": "assignment", "grid": "G1", "household": "h1",
                  "worker": "w", "due": "2026-13-01", "reason": "回访", "author": "s",
                  "at": "2026-11-20T09:12:00Z"}
    rejects(assignment, "due", "date such as")


def test_tag_configuration() -> None:
    config = {"_id": "config:tags", "type": "config", "default_frequency_days": 91,
              "tags": {"elderly_alone": {"zh": "独居老人", "en": "Elderly", "frequency_days": 0,
                                         "special_care": True}}}
    rejects(config, "tags.elderly_alone.frequency_days", "between 1 and 366")
