from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.mode import Mode
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.budget import Budget
    from ..models.execution_config_state_merge import ExecutionConfigStateMerge
    from ..models.retry_policy import RetryPolicy


T = TypeVar("T", bound="ExecutionConfig")


@_attrs_define
class ExecutionConfig:
    """How to plan and run a task; omitted fields take the server's defaults.

    Attributes:
        budget (Budget | None | Unset): Tokens and/or cost after which no step starts.
        dry_run (bool | Unset): Plan and store, run nothing. Default: False.
        execution_timeout_s (float | None | Unset):
        fail_fast (bool | Unset): Stop everything at the first failed step. Default: True.
        max_parallel (int | None | Unset):
        mode (Mode | Unset): How the planner builds a plan.
        parallel (bool | Unset): False runs one step at a time. Default: True.
        profile (None | str | Unset):
        retry (None | RetryPolicy | Unset): Retry policy of every step that does not set its own; null or absent for the
            server's default policy.
        state_merge (ExecutionConfigStateMerge | Unset): The merge rule of shared-state keys: replace (the default for
            any key not named) or append.
        step_timeout_s (float | None | Unset):
    """

    budget: Budget | None | Unset = UNSET
    dry_run: bool | Unset = False
    execution_timeout_s: float | None | Unset = UNSET
    fail_fast: bool | Unset = True
    max_parallel: int | None | Unset = UNSET
    mode: Mode | Unset = UNSET
    parallel: bool | Unset = True
    profile: None | str | Unset = UNSET
    retry: None | RetryPolicy | Unset = UNSET
    state_merge: ExecutionConfigStateMerge | Unset = UNSET
    step_timeout_s: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.budget import Budget  # noqa: PLC0415
        from ..models.retry_policy import RetryPolicy  # noqa: PLC0415

        budget: dict[str, Any] | None | Unset
        if isinstance(self.budget, Unset):
            budget = UNSET
        elif isinstance(self.budget, Budget):
            budget = self.budget.to_dict()
        else:
            budget = self.budget

        dry_run = self.dry_run

        execution_timeout_s: float | None | Unset
        if isinstance(self.execution_timeout_s, Unset):
            execution_timeout_s = UNSET
        else:
            execution_timeout_s = self.execution_timeout_s

        fail_fast = self.fail_fast

        max_parallel: int | None | Unset
        if isinstance(self.max_parallel, Unset):
            max_parallel = UNSET
        else:
            max_parallel = self.max_parallel

        mode: str | Unset = UNSET
        if not isinstance(self.mode, Unset):
            mode = self.mode.value

        parallel = self.parallel

        profile: None | str | Unset
        if isinstance(self.profile, Unset):
            profile = UNSET
        else:
            profile = self.profile

        retry: dict[str, Any] | None | Unset
        if isinstance(self.retry, Unset):
            retry = UNSET
        elif isinstance(self.retry, RetryPolicy):
            retry = self.retry.to_dict()
        else:
            retry = self.retry

        state_merge: dict[str, Any] | Unset = UNSET
        if not isinstance(self.state_merge, Unset):
            state_merge = self.state_merge.to_dict()

        step_timeout_s: float | None | Unset
        if isinstance(self.step_timeout_s, Unset):
            step_timeout_s = UNSET
        else:
            step_timeout_s = self.step_timeout_s

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if budget is not UNSET:
            field_dict["budget"] = budget
        if dry_run is not UNSET:
            field_dict["dry_run"] = dry_run
        if execution_timeout_s is not UNSET:
            field_dict["execution_timeout_s"] = execution_timeout_s
        if fail_fast is not UNSET:
            field_dict["fail_fast"] = fail_fast
        if max_parallel is not UNSET:
            field_dict["max_parallel"] = max_parallel
        if mode is not UNSET:
            field_dict["mode"] = mode
        if parallel is not UNSET:
            field_dict["parallel"] = parallel
        if profile is not UNSET:
            field_dict["profile"] = profile
        if retry is not UNSET:
            field_dict["retry"] = retry
        if state_merge is not UNSET:
            field_dict["state_merge"] = state_merge
        if step_timeout_s is not UNSET:
            field_dict["step_timeout_s"] = step_timeout_s

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.budget import Budget  # noqa: PLC0415
        from ..models.execution_config_state_merge import ExecutionConfigStateMerge  # noqa: PLC0415
        from ..models.retry_policy import RetryPolicy  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_budget(data: object) -> Budget | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                budget_type_0 = Budget.from_dict(data)

                return budget_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Budget | None | Unset, data)

        budget = _parse_budget(d.pop("budget", UNSET))

        dry_run = d.pop("dry_run", UNSET)

        def _parse_execution_timeout_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        execution_timeout_s = _parse_execution_timeout_s(d.pop("execution_timeout_s", UNSET))

        fail_fast = d.pop("fail_fast", UNSET)

        def _parse_max_parallel(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_parallel = _parse_max_parallel(d.pop("max_parallel", UNSET))

        _mode = d.pop("mode", UNSET)
        mode: Mode | Unset
        if isinstance(_mode, Unset):
            mode = UNSET
        else:
            mode = Mode(_mode)

        parallel = d.pop("parallel", UNSET)

        def _parse_profile(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        profile = _parse_profile(d.pop("profile", UNSET))

        def _parse_retry(data: object) -> None | RetryPolicy | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                retry_type_0 = RetryPolicy.from_dict(data)

                return retry_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RetryPolicy | Unset, data)

        retry = _parse_retry(d.pop("retry", UNSET))

        _state_merge = d.pop("state_merge", UNSET)
        state_merge: ExecutionConfigStateMerge | Unset
        if isinstance(_state_merge, Unset):
            state_merge = UNSET
        else:
            state_merge = ExecutionConfigStateMerge.from_dict(_state_merge)

        def _parse_step_timeout_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        step_timeout_s = _parse_step_timeout_s(d.pop("step_timeout_s", UNSET))

        execution_config = cls(
            budget=budget,
            dry_run=dry_run,
            execution_timeout_s=execution_timeout_s,
            fail_fast=fail_fast,
            max_parallel=max_parallel,
            mode=mode,
            parallel=parallel,
            profile=profile,
            retry=retry,
            state_merge=state_merge,
            step_timeout_s=step_timeout_s,
        )

        return execution_config
