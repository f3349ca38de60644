from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.merge_rule import MergeRule
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.state_writer_read import StateWriterRead


T = TypeVar("T", bound="StateEntryRead")


@_attrs_define
class StateEntryRead:
    """One key of an execution's shared state, with who wrote it last.

    Attributes:
        key (str):
        merge (MergeRule):
        updated_at (datetime.datetime):
        updated_by_attempt (int | None):
        updated_by_run (str):
        updated_by_step (str):
        value (Any):
        version (int): 1 for the first write, then one more per write.
        writers (list[StateWriterRead] | None | Unset): An append key's list: who wrote each item, in order.
    """

    key: str
    merge: MergeRule
    updated_at: datetime.datetime
    updated_by_attempt: int | None
    updated_by_run: str
    updated_by_step: str
    value: Any
    version: int
    writers: list[StateWriterRead] | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        key = self.key

        merge = self.merge.value

        updated_at = self.updated_at.isoformat()

        updated_by_attempt: int | None
        updated_by_attempt = self.updated_by_attempt

        updated_by_run = self.updated_by_run

        updated_by_step = self.updated_by_step

        value = self.value

        version = self.version

        writers: list[dict[str, Any]] | None | Unset
        if isinstance(self.writers, Unset):
            writers = UNSET
        elif isinstance(self.writers, list):
            writers = []
            for writers_type_0_item_data in self.writers:
                writers_type_0_item = writers_type_0_item_data.to_dict()
                writers.append(writers_type_0_item)

        else:
            writers = self.writers

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key": key,
                "merge": merge,
                "updated_at": updated_at,
                "updated_by_attempt": updated_by_attempt,
                "updated_by_run": updated_by_run,
                "updated_by_step": updated_by_step,
                "value": value,
                "version": version,
            }
        )
        if writers is not UNSET:
            field_dict["writers"] = writers

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.state_writer_read import StateWriterRead  # noqa: PLC0415

        d = dict(src_dict)
        key = d.pop("key")

        merge = MergeRule(d.pop("merge"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_updated_by_attempt(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        updated_by_attempt = _parse_updated_by_attempt(d.pop("updated_by_attempt"))

        updated_by_run = d.pop("updated_by_run")

        updated_by_step = d.pop("updated_by_step")

        value = d.pop("value")

        version = d.pop("version")

        def _parse_writers(data: object) -> list[StateWriterRead] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                writers_type_0 = []
                _writers_type_0 = data
                for writers_type_0_item_data in _writers_type_0:
                    writers_type_0_item = StateWriterRead.from_dict(writers_type_0_item_data)

                    writers_type_0.append(writers_type_0_item)

                return writers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[StateWriterRead] | None | Unset, data)

        writers = _parse_writers(d.pop("writers", UNSET))

        state_entry_read = cls(
            key=key,
            merge=merge,
            updated_at=updated_at,
            updated_by_attempt=updated_by_attempt,
            updated_by_run=updated_by_run,
            updated_by_step=updated_by_step,
            value=value,
            version=version,
            writers=writers,
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
