from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="StateEntryRead")


@_attrs_define
class StateEntryRead:
    """One key of an execution's shared state, with who wrote it last.

    Attributes:
        key (str):
        updated_at (datetime.datetime):
        updated_by_run (str):
        updated_by_step (str):
        value (Any):
        version (int): 1 for the first write, then one more per write.
    """

    key: str
    updated_at: datetime.datetime
    updated_by_run: str
    updated_by_step: str
    value: Any
    version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        key = self.key

        updated_at = self.updated_at.isoformat()

        updated_by_run = self.updated_by_run

        updated_by_step = self.updated_by_step

        value = self.value

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key": key,
                "updated_at": updated_at,
                "updated_by_run": updated_by_run,
                "updated_by_step": updated_by_step,
                "value": value,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        key = d.pop("key")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        updated_by_run = d.pop("updated_by_run")

        updated_by_step = d.pop("updated_by_step")

        value = d.pop("value")

        version = d.pop("version")

        state_entry_read = cls(
            key=key,
            updated_at=updated_at,
            updated_by_run=updated_by_run,
            updated_by_step=updated_by_step,
            value=value,
            version=version,
        )

        state_entry_read.additional_properties = d
        return state_entry_read

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
