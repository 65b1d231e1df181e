"""quick_init (schemas/quick_init.py): the same records as the dataclass's own __init__."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.quick_init import quick_init
from parkpulse.schemas.records import IndicatorStatus, Observation

QUICK = [Observation, IndicatorStatus]
value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))


def _by_the_generated_init(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
    record = object.__new__(cls)
    cls.__init__.__wrapped__(record, *args, **kwargs)
    return record


def _fields(record: Any) -> tuple[Any, ...]:
    return tuple(getattr(record, f.name) for f in dataclasses.fields(record))


@pytest.mark.parametrize("cls", QUICK, ids=lambda c: c.__name__)
@given(data=st.data())
def test_any_arguments_give_the_record_the_generated_init_gives(
    cls: type[Any], data: st.DataObject
) -> None:
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING]
    given_count = data.draw(st.integers(len(required), len(fields)))
    values = data.draw(st.lists(value, min_size=given_count, max_size=given_count))
    as_keywords = data.draw(st.booleans())
    if as_keywords:
        kwargs = {f.name: v for f, v in zip(fields, values, strict=False)}
        quick, generated = cls(**kwargs), _by_the_generated_init(cls, **kwargs)
    else:
        quick, generated = cls(*values), _by_the_generated_init(cls, *values)
    assert _fields(quick) == _fields(generated)
    assert quick == generated  # (a NaN is the same object in both, so equal)


@pytest.mark.parametrize("cls", QUICK, ids=lambda c: c.__name__)
def test_still_frozen_hashable_and_signed_as_before(cls: type[Any]) -> None:
    args = [f"v{i}" for i, f in enumerate(dataclasses.fields(cls))]
    record = cls(*args)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.zone = "other"
    assert hash(record) == hash(cls(*args))
    assert dataclasses.replace(record, zone="z").zone == "z"
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(inspect.signature(cls).parameters) == names


def test_too_few_or_unknown_arguments_fail_as_they_did() -> None:
    with pytest.raises(TypeError):
        Observation("z", "i")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Observation("z", "i", "2021-01", "YTD", 1.0, "u", nonsense=1)  # type: ignore[call-arg]


def test_classes_it_cannot_speed_up_are_refused_at_import() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class WithoutSlots:
        x: int

    for cls in (WithFactory, WithoutSlots):
        with pytest.raises(TypeError):
            quick_init(cls)
