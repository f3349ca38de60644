from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.event_type import EventType

if TYPE_CHECKING:
    from ..models.event_read_data import EventReadData


T = TypeVar("T", bound="EventRead")


@_attrs_define
class EventRead:
    """One append-only progress record; ``seq`` counts from 1 with no gap.

    Attributes:
        created_at (datetime.datetime):
        data (EventReadData):
        execution_id (str):
        seq (int):
        step_id (None | str):
        type_ (EventType):
    """

    created_at: datetime.datetime
    data: EventReadData
    execution_id: str
    seq: int
    step_id: None | str
    type_: EventType
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        data = self.data.to_dict()

        execution_id = self.execution_id

        seq = self.seq

        step_id: None | str
        step_id = self.step_id

        type_ = self.type_.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "data": data,
                "execution_id": execution_id,
                "seq": seq,
                "step_id": step_id,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.event_read_data import EventReadData  # noqa: PLC0415

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        data = EventReadData.from_dict(d.pop("data"))

        execution_id = d.pop("execution_id")

        seq = d.pop("seq")

        def _parse_step_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        step_id = _parse_step_id(d.pop("step_id"))

        type_ = EventType(d.pop("type"))

        event_read = cls(
            created_at=created_at,
            data=data,
            execution_id=execution_id,
            seq=seq,
            step_id=step_id,
            type_=type_,
        )

        event_read.additional_properties = d
        return event_read

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
