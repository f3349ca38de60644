from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.execution_status import ExecutionStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.execution_result_runs_by_status import ExecutionResultRunsByStatus
    from ..models.execution_result_steps_by_status import ExecutionResultStepsByStatus


T = TypeVar("T", bound="ExecutionResult")


@_attrs_define
class ExecutionResult:
    """Measured figures of a finished execution.

    Attributes:
        agent_time_ms (int): Sum of the durations of all runs.
        critical_path_taken (list[str]):
        estimated_savings_ms (int):
        measured_savings_ms (int): Agent time minus wall time.
        parallel_groups_executed (int): Phases in which a step ran.
        runs_by_status (ExecutionResultRunsByStatus):
        speedup (float | None): Agent time over wall time.
        status (ExecutionStatus):
        steps_by_status (ExecutionResultStepsByStatus):
        total_time_ms (int): Wall time from start to finish.
        cost (float | None | Unset): Cost of the runs that reported one; null if none.
        input_tokens (int | Unset): Input tokens of all runs. Default: 0.
        output_tokens (int | Unset): Output tokens of all runs. Default: 0.
        total_tokens (int | Unset):  Default: 0.
    """

    agent_time_ms: int
    critical_path_taken: list[str]
    estimated_savings_ms: int
    measured_savings_ms: int
    parallel_groups_executed: int
    runs_by_status: ExecutionResultRunsByStatus
    speedup: float | None
    status: ExecutionStatus
    steps_by_status: ExecutionResultStepsByStatus
    total_time_ms: int
    cost: float | None | Unset = UNSET
    input_tokens: int | Unset = 0
    output_tokens: int | Unset = 0
    total_tokens: int | Unset = 0
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        agent_time_ms = self.agent_time_ms

        critical_path_taken = self.critical_path_taken

        estimated_savings_ms = self.estimated_savings_ms

        measured_savings_ms = self.measured_savings_ms

        parallel_groups_executed = self.parallel_groups_executed

        runs_by_status = self.runs_by_status.to_dict()

        speedup: float | None
        speedup = self.speedup

        status = self.status.value

        steps_by_status = self.steps_by_status.to_dict()

        total_time_ms = self.total_time_ms

        cost: float | None | Unset
        if isinstance(self.cost, Unset):
            cost = UNSET
        else:
            cost = self.cost

        input_tokens = self.input_tokens

        output_tokens = self.output_tokens

        total_tokens = self.total_tokens

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "agent_time_ms": agent_time_ms,
                "critical_path_taken": critical_path_taken,
                "estimated_savings_ms": estimated_savings_ms,
                "measured_savings_ms": measured_savings_ms,
                "parallel_groups_executed": parallel_groups_executed,
                "runs_by_status": runs_by_status,
                "speedup": speedup,
                "status": status,
                "steps_by_status": steps_by_status,
                "total_time_ms": total_time_ms,
            }
        )
        if cost is not UNSET:
            field_dict["cost"] = cost
        if input_tokens is not UNSET:
            field_dict["input_tokens"] = input_tokens
        if output_tokens is not UNSET:
            field_dict["output_tokens"] = output_tokens
        if total_tokens is not UNSET:
            field_dict["total_tokens"] = total_tokens

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.execution_result_runs_by_status import ExecutionResultRunsByStatus  # noqa: PLC0415
        from ..models.execution_result_steps_by_status import ExecutionResultStepsByStatus  # noqa: PLC0415

        d = dict(src_dict)
        agent_time_ms = d.pop("agent_time_ms")

        critical_path_taken = cast(list[str], d.pop("critical_path_taken"))

        estimated_savings_ms = d.pop("estimated_savings_ms")

        measured_savings_ms = d.pop("measured_savings_ms")

        parallel_groups_executed = d.pop("parallel_groups_executed")

        runs_by_status = ExecutionResultRunsByStatus.from_dict(d.pop("runs_by_status"))

        def _parse_speedup(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        speedup = _parse_speedup(d.pop("speedup"))

        status = ExecutionStatus(d.pop("status"))

        steps_by_status = ExecutionResultStepsByStatus.from_dict(d.pop("steps_by_status"))

        total_time_ms = d.pop("total_time_ms")

        def _parse_cost(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        cost = _parse_cost(d.pop("cost", UNSET))

        input_tokens = d.pop("input_tokens", UNSET)

        output_tokens = d.pop("output_tokens", UNSET)

        total_tokens = d.pop("total_tokens", UNSET)

        execution_result = cls(
            agent_time_ms=agent_time_ms,
            critical_path_taken=critical_path_taken,
            estimated_savings_ms=estimated_savings_ms,
            measured_savings_ms=measured_savings_ms,
            parallel_groups_executed=parallel_groups_executed,
            runs_by_status=runs_by_status,
            speedup=speedup,
            status=status,
            steps_by_status=steps_by_status,
            total_time_ms=total_time_ms,
            cost=cost,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=total_tokens,
        )

        execution_result.additional_properties = d
        return execution_result

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
