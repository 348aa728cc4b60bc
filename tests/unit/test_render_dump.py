"""The manifest serialiser: any plain value survives a YAML round trip, bytes are deterministic."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.render.manifests import dump

scalars = st.one_of(
    st.text(max_size=40),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.none(),
    st.sampled_from(
        [
            "yes",
            "no",
            "on",
            "0x1f",
            "1e3",
            "~",
            "null",
            "0755",
            "- x",
            "a: b",
            "{{ ds.meta_data.uuid }}",
            "line1\nline2\n",
            " lead",
            "trail ",
            "#x",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=12), values, max_size=5), min_size=1, max_size=3))
def test_round_trip(objects: list[dict[str, object]]) -> None:
    data = dump(objects)
    assert list(yaml.safe_load_all(data)) == objects
    assert dump(objects) == data


def test_multiline_strings_are_literal_blocks_and_no_anchors() -> None:
    shared = {"k": "v"}
    text = dump([{"a": "x\ny\n", "b": shared, "c": shared}]).decode()
    assert "a: |\n  x\n  y\n" in text
    assert "&" not in text and "*" not in text
