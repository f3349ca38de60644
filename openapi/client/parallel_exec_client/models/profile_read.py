from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.profile_read_runners import ProfileReadRunners


T = TypeVar("T", bound="ProfileRead")


@_attrs_define
class ProfileRead:
    """A profile by name, with the runner kind of each agent; never its options.

    Attributes:
        default (bool): Used when a request names no profile.
        default_runner (str):
        description (str):
        name (str):
        runners (ProfileReadRunners):
    """

    default: bool
    default_runner: str
    description: str
    name: str
    runners: ProfileReadRunners
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        default = self.default

        default_runner = self.default_runner

        description = self.description

        name = self.name

        runners = self.runners.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "default": default,
                "default_runner": default_runner,
                "description": description,
                "name": name,
                "runners": runners,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.profile_read_runners import ProfileReadRunners  # noqa: PLC0415

        d = dict(src_dict)
        default = d.pop("default")

        default_runner = d.pop("default_runner")

        description = d.pop("description")

        name = d.pop("name")

        runners = ProfileReadRunners.from_dict(d.pop("runners"))

        profile_read = cls(
            default=default,
            default_runner=default_runner,
            description=description,
            name=name,
            runners=runners,
        )

        profile_read.additional_properties = d
        return profile_read

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
