"""Registration columns cross to and from the reader process packed (schemas/packed.py): what
is unpacked is exactly what was packed, whatever the texts hold."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.packed import SEPARATOR, pack, unpack
from parkpulse.schemas.registration import RegistrationColumns

TEXT = st.text(alphabet=st.sampled_from(["a", "Z", "0", "-", " ", "区", SEPARATOR, "\n"]))


@st.composite
def columns(draw: st.DrawFn) -> RegistrationColumns:
    n = draw(st.integers(0, 12))
    texts = st.lists(TEXT, min_size=n, max_size=n)
    capitals = st.lists(
        st.none() | st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n
    )
    return RegistrationColumns(
        zone=draw(texts),
        registration_id=draw(texts),
        registered_at=draw(texts),
        entity_type=draw(texts),
        industry_code=draw(texts),
        registered_capital=draw(capitals),
        month=draw(texts),
        batch_id=draw(texts),
        sent_at=draw(texts),
    )


@given(columns())
def test_unpack_gives_what_was_packed(packed_columns: RegistrationColumns) -> None:
    # Through a pickle, as between the processes.
    again = unpack(pickle.loads(pickle.dumps(pack(packed_columns), protocol=5)))
    assert again.columns() == packed_columns.columns()
    assert all(type(column) is list for column in again.columns())


def test_plain_texts_travel_joined_and_a_text_with_the_separator_as_a_list() -> None:
    plain = RegistrationColumns(*([["a", "b"]] * 5), [1.0, None], *([["c", "d"]] * 3))
    n, packed = pack(plain)
    assert n == 2 and packed["registration_id"] == ("joined", "a\x1fb")
    odd = RegistrationColumns(*([["a", f"b{SEPARATOR}"]] * 5), [1.0, None], *([["c", "d"]] * 3))
    assert pack(odd)[1]["registration_id"] == ("list", ["a", f"b{SEPARATOR}"])
    assert unpack(pack(odd)).columns() == odd.columns()
