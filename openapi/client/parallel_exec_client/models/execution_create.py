from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.execution_config import ExecutionConfig
    from ..models.plan_input import PlanInput


T = TypeVar("T", bound="ExecutionCreate")


@_attrs_define
class ExecutionCreate:
    """
    Attributes:
        task (str): The task in plain words.
        config (ExecutionConfig | Unset): How to plan and run a task; omitted fields take the server's defaults.
        plan (None | PlanInput | Unset):
    """

    task: str
    config: ExecutionConfig | Unset = UNSET
    plan: None | PlanInput | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.plan_input import PlanInput  # noqa: PLC0415

        task = self.task

        config: dict[str, Any] | Unset = UNSET
        if not isinstance(self.config, Unset):
            config = self.config.to_dict()

        plan: dict[str, Any] | None | Unset
        if isinstance(self.plan, Unset):
            plan = UNSET
        elif isinstance(self.plan, PlanInput):
            plan = self.plan.to_dict()
        else:
            plan = self.plan

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "task": task,
            }
        )
        if config is not UNSET:
            field_dict["config"] = config
        if plan is not UNSET:
            field_dict["plan"] = plan

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.execution_config import ExecutionConfig  # noqa: PLC0415
        from ..models.plan_input import PlanInput  # noqa: PLC0415

        d = dict(src_dict)
        task = d.pop("task")

        _config = d.pop("config", UNSET)
        config: ExecutionConfig | Unset
        if isinstance(_config, Unset):
            config = UNSET
        else:
            config = ExecutionConfig.from_dict(_config)

        def _parse_plan(data: object) -> None | PlanInput | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                plan_type_0 = PlanInput.from_dict(data)

                return plan_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PlanInput | Unset, data)

        plan = _parse_plan(d.pop("plan", UNSET))

        execution_create = cls(
            task=task,
            config=config,
            plan=plan,
        )

        return execution_create
