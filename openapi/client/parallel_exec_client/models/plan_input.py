from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.step_spec import StepSpec


T = TypeVar("T", bound="PlanInput")


@_attrs_define
class PlanInput:
    """An explicit plan: the planner is skipped and the steps are only checked.

    Attributes:
        steps (list[StepSpec]):
    """

    steps: list[StepSpec]

    def to_dict(self) -> dict[str, Any]:
        steps = []
        for steps_item_data in self.steps:
            steps_item = steps_item_data.to_dict()
            steps.append(steps_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "steps": steps,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.step_spec import StepSpec  # noqa: PLC0415

        d = dict(src_dict)
        steps = []
        _steps = d.pop("steps")
        for steps_item_data in _steps:
            steps_item = StepSpec.from_dict(steps_item_data)

            steps.append(steps_item)

        plan_input = cls(
            steps=steps,
        )

        return plan_input
