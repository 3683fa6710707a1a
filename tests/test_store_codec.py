"""The stores' JSON encoding: never fails, always valid JSON, JSON Lines split exactly at records."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from otel_runjournal.stores import codec as _codec

# text without lone surrogates (those cannot be UTF-8 at all; they are covered separately)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_RECORDS = st.lists(st.dictionaries(_TEXT, _JSON_VALUES, max_size=5), min_size=1, max_size=6)


@given(st.lists(_RECORDS, min_size=1, max_size=5))
def test_jsonl_groups_splits_exactly_at_records(groups: list[list[dict[str, Any]]]) -> None:
    """Any records (newlines, commas, brackets in strings) come back one per line, per group, in order."""
    encoded = _codec.jsonl_groups(groups)
    assert len(encoded) == len(groups)
    for text, records in zip(encoded, groups, strict=True):
        assert text.endswith(b"\n")
        assert [json.loads(line) for line in text[:-1].split(b"\n")] == records


def test_jsonl_groups_falls_back_for_what_orjson_refuses() -> None:
    """A group with an int beyond 64 bits is still encoded (by the stdlib), every group intact."""
    groups = [[{"a": 1}], [{"big": 2**70, "t": datetime(2025, 1, 1, tzinfo=timezone.utc)}]]
    encoded = _codec.jsonl_groups(groups)
    assert json.loads(encoded[0]) == {"a": 1}
    assert json.loads(encoded[1]) == {"big": 2**70, "t": "2025-01-01T00:00:00+00:00"}


def test_dumps_never_fails_and_stays_valid_json() -> None:
    """NaN/inf become null, non-string keys text, unknown objects their str, lone surrogates '?'."""
    value = {
        "nan": float("nan"),
        "inf": [float("-inf")],
        1: "k",
        "obj": {1, 2},
        "s": "a\ud800b",
        "big": 2**70,
    }
    decoded = json.loads(_codec.dumps(value))
    assert decoded == {"nan": None, "inf": [None], "1": "k", "obj": "{1, 2}", "s": "a?b", "big": 2**70}


def test_timestamps_are_utc_iso_text() -> None:
    """Aware datetimes in any zone and naive ones (taken as UTC) are written as ISO-8601 UTC."""
    plus_two = timezone(timedelta(hours=2))
    rows = [
        {"t": _codec.utc(datetime(2025, 1, 1, 14, 0, 0, 5, tzinfo=plus_two))},
        {"t": _codec.utc(datetime(2025, 1, 1))},
    ]
    lines = _codec.jsonl_groups([rows])[0].splitlines()
    assert [json.loads(line)["t"] for line in lines] == [
        "2025-01-01T12:00:00.000005+00:00",
        "2025-01-01T00:00:00+00:00",
    ]


@given(st.lists(_JSON_VALUES, max_size=8))
def test_dumpb_all_encodes_each_value_on_its_own(values: list[Any]) -> None:
    """One encoder call still yields one exact JSON document per value (strings with commas too)."""
    assert [json.loads(text) for text in _codec.dumpb_all(values)] == values


def test_jsonl_groups_with_non_str_keys_match_dumpb() -> None:
    """Non-string keys (orjson is tried without, then with its non-str-key option): as dumpb writes them."""
    groups = [[{"a": {1: "x", None: 2}}, {"b": 1}], [{"c": {2.5: [1]}}]]
    encoded = _codec.jsonl_groups(groups)
    assert encoded == [b"".join(_codec.dumpb(r) + b"\n" for r in group) for group in groups]
    assert json.loads(encoded[0].splitlines()[0]) == {"a": {"1": "x", "null": 2}}
