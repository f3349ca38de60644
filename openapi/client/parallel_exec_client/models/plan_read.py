from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.mode import Mode
from ..models.task_type import TaskType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.step_read import StepRead


T = TypeVar("T", bound="PlanRead")


@_attrs_define
class PlanRead:
    """
    Attributes:
        critical_path (list[str]):
        critical_path_ms (int):
        description (str): The plan as a readable phase listing.
        estimated_savings_ms (int):
        execution_id (str):
        mode (Mode): How the planner builds a plan.
        parallel_ms (int):
        phases (list[list[str]]):
        sequential_ms (int):
        steps (list[StepRead]):
        task_type (None | TaskType):
        max_parallel (int | None | Unset): Most steps run at once: 1 when parallel is off.
    """

    critical_path: list[str]
    critical_path_ms: int
    description: str
    estimated_savings_ms: int
    execution_id: str
    mode: Mode
    parallel_ms: int
    phases: list[list[str]]
    sequential_ms: int
    steps: list[StepRead]
    task_type: None | TaskType
    max_parallel: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        critical_path = self.critical_path

        critical_path_ms = self.critical_path_ms

        description = self.description

        estimated_savings_ms = self.estimated_savings_ms

        execution_id = self.execution_id

        mode = self.mode.value

        parallel_ms = self.parallel_ms

        phases = []
        for phases_item_data in self.phases:
            phases_item = phases_item_data

            phases.append(phases_item)

        sequential_ms = self.sequential_ms

        steps = []
        for steps_item_data in self.steps:
            steps_item = steps_item_data.to_dict()
            steps.append(steps_item)

        task_type: None | str
        if isinstance(self.task_type, TaskType):
            task_type = self.task_type.value
        else:
            task_type = self.task_type

        max_parallel: int | None | Unset
        if isinstance(self.max_parallel, Unset):
            max_parallel = UNSET
        else:
            max_parallel = self.max_parallel

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "critical_path": critical_path,
                "critical_path_ms": critical_path_ms,
                "description": description,
                "estimated_savings_ms": estimated_savings_ms,
                "execution_id": execution_id,
                "mode": mode,
                "parallel_ms": parallel_ms,
                "phases": phases,
                "sequential_ms": sequential_ms,
                "steps": steps,
                "task_type": task_type,
            }
        )
        if max_parallel is not UNSET:
            field_dict["max_parallel"] = max_parallel

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.step_read import StepRead  # noqa: PLC0415

        d = dict(src_dict)
        critical_path = cast(list[str], d.pop("critical_path"))

        critical_path_ms = d.pop("critical_path_ms")

        description = d.pop("description")

        estimated_savings_ms = d.pop("estimated_savings_ms")

        execution_id = d.pop("execution_id")

        mode = Mode(d.pop("mode"))

        parallel_ms = d.pop("parallel_ms")

        phases = []
        _phases = d.pop("phases")
        for phases_item_data in _phases:
            phases_item = cast(list[str], phases_item_data)

            phases.append(phases_item)

        sequential_ms = d.pop("sequential_ms")

        steps = []
        _steps = d.pop("steps")
        for steps_item_data in _steps:
            steps_item = StepRead.from_dict(steps_item_data)

            steps.append(steps_item)

        def _parse_task_type(data: object) -> None | TaskType:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                task_type_type_0 = TaskType(data)

                return task_type_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskType, data)

        task_type = _parse_task_type(d.pop("task_type"))

        def _parse_max_parallel(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_parallel = _parse_max_parallel(d.pop("max_parallel", UNSET))

        plan_read = cls(
            critical_path=critical_path,
            critical_path_ms=critical_path_ms,
            description=description,
            estimated_savings_ms=estimated_savings_ms,
            execution_id=execution_id,
            mode=mode,
            parallel_ms=parallel_ms,
            phases=phases,
            sequential_ms=sequential_ms,
            steps=steps,
            task_type=task_type,
            max_parallel=max_parallel,
        )

        plan_read.additional_properties = d
        return plan_read

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
