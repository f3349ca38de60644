from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.execution_status import ExecutionStatus
from ..models.task_type import TaskType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.execution_config import ExecutionConfig
    from ..models.execution_result import ExecutionResult
    from ..models.plan_read import PlanRead


T = TypeVar("T", bound="ExecutionRead")


@_attrs_define
class ExecutionRead:
    """
    Attributes:
        config (ExecutionConfig): How to plan and run a task; omitted fields take the server's defaults.
        created_at (datetime.datetime):
        dry_run (bool):
        estimated_savings_ms (int):
        finished_at (datetime.datetime | None):
        id (str):
        last_seq (int):
        profile (str):
        reason (None | str): Why it ended as it did, when not plain.
        result (ExecutionResult | None):
        started_at (datetime.datetime | None):
        status (ExecutionStatus):
        task (str):
        task_type (None | TaskType):
        plan (None | PlanRead | Unset): Included when the execution is created.
    """

    config: ExecutionConfig
    created_at: datetime.datetime
    dry_run: bool
    estimated_savings_ms: int
    finished_at: datetime.datetime | None
    id: str
    last_seq: int
    profile: str
    reason: None | str
    result: ExecutionResult | None
    started_at: datetime.datetime | None
    status: ExecutionStatus
    task: str
    task_type: None | TaskType
    plan: None | PlanRead | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.execution_result import ExecutionResult  # noqa: PLC0415
        from ..models.plan_read import PlanRead  # noqa: PLC0415

        config = self.config.to_dict()

        created_at = self.created_at.isoformat()

        dry_run = self.dry_run

        estimated_savings_ms = self.estimated_savings_ms

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = self.id

        last_seq = self.last_seq

        profile = self.profile

        reason: None | str
        reason = self.reason

        result: dict[str, Any] | None
        if isinstance(self.result, ExecutionResult):
            result = self.result.to_dict()
        else:
            result = self.result

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        status = self.status.value

        task = self.task

        task_type: None | str
        if isinstance(self.task_type, TaskType):
            task_type = self.task_type.value
        else:
            task_type = self.task_type

        plan: dict[str, Any] | None | Unset
        if isinstance(self.plan, Unset):
            plan = UNSET
        elif isinstance(self.plan, PlanRead):
            plan = self.plan.to_dict()
        else:
            plan = self.plan

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "config": config,
                "created_at": created_at,
                "dry_run": dry_run,
                "estimated_savings_ms": estimated_savings_ms,
                "finished_at": finished_at,
                "id": id,
                "last_seq": last_seq,
                "profile": profile,
                "reason": reason,
                "result": result,
                "started_at": started_at,
                "status": status,
                "task": task,
                "task_type": task_type,
            }
        )
        if plan is not UNSET:
            field_dict["plan"] = plan

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.execution_config import ExecutionConfig  # noqa: PLC0415
        from ..models.execution_result import ExecutionResult  # noqa: PLC0415
        from ..models.plan_read import PlanRead  # noqa: PLC0415

        d = dict(src_dict)
        config = ExecutionConfig.from_dict(d.pop("config"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        dry_run = d.pop("dry_run")

        estimated_savings_ms = d.pop("estimated_savings_ms")

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        id = d.pop("id")

        last_seq = d.pop("last_seq")

        profile = d.pop("profile")

        def _parse_reason(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        reason = _parse_reason(d.pop("reason"))

        def _parse_result(data: object) -> ExecutionResult | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                result_type_0 = ExecutionResult.from_dict(data)

                return result_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ExecutionResult | None, data)

        result = _parse_result(d.pop("result"))

        def _parse_started_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        started_at = _parse_started_at(d.pop("started_at"))

        status = ExecutionStatus(d.pop("status"))

        task = d.pop("task")

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

        def _parse_plan(data: object) -> None | PlanRead | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                plan_type_0 = PlanRead.from_dict(data)

                return plan_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PlanRead | Unset, data)

        plan = _parse_plan(d.pop("plan", UNSET))

        execution_read = cls(
            config=config,
            created_at=created_at,
            dry_run=dry_run,
            estimated_savings_ms=estimated_savings_ms,
            finished_at=finished_at,
            id=id,
            last_seq=last_seq,
            profile=profile,
            reason=reason,
            result=result,
            started_at=started_at,
            status=status,
            task=task,
            task_type=task_type,
            plan=plan,
        )

        execution_read.additional_properties = d
        return execution_read

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
