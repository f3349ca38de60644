from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.agent import Agent
from ..models.run_status import RunStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.run_read_details_type_0 import RunReadDetailsType0


T = TypeVar("T", bound="RunRead")


@_attrs_define
class RunRead:
    """
    Attributes:
        agent (Agent):
        attempt (int):
        details (None | RunReadDetailsType0):
        duration_ms (int | None):
        error (None | str):
        finished_at (datetime.datetime | None):
        id (str):
        output (Any | None):
        runner (str):
        started_at (datetime.datetime):
        status (RunStatus):
        step_id (str):
        cost (float | None | Unset):
        input_tokens (int | None | Unset):
        output_tokens (int | None | Unset):
    """

    agent: Agent
    attempt: int
    details: None | RunReadDetailsType0
    duration_ms: int | None
    error: None | str
    finished_at: datetime.datetime | None
    id: str
    output: Any | None
    runner: str
    started_at: datetime.datetime
    status: RunStatus
    step_id: str
    cost: float | None | Unset = UNSET
    input_tokens: int | None | Unset = UNSET
    output_tokens: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.run_read_details_type_0 import RunReadDetailsType0  # noqa: PLC0415

        agent = self.agent.value

        attempt = self.attempt

        details: dict[str, Any] | None
        if isinstance(self.details, RunReadDetailsType0):
            details = self.details.to_dict()
        else:
            details = self.details

        duration_ms: int | None
        duration_ms = self.duration_ms

        error: None | str
        error = self.error

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = self.id

        output: Any | None
        output = self.output

        runner = self.runner

        started_at = self.started_at.isoformat()

        status = self.status.value

        step_id = self.step_id

        cost: float | None | Unset
        if isinstance(self.cost, Unset):
            cost = UNSET
        else:
            cost = self.cost

        input_tokens: int | None | Unset
        if isinstance(self.input_tokens, Unset):
            input_tokens = UNSET
        else:
            input_tokens = self.input_tokens

        output_tokens: int | None | Unset
        if isinstance(self.output_tokens, Unset):
            output_tokens = UNSET
        else:
            output_tokens = self.output_tokens

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "agent": agent,
                "attempt": attempt,
                "details": details,
                "duration_ms": duration_ms,
                "error": error,
                "finished_at": finished_at,
                "id": id,
                "output": output,
                "runner": runner,
                "started_at": started_at,
                "status": status,
                "step_id": step_id,
            }
        )
        if cost is not UNSET:
            field_dict["cost"] = cost
        if input_tokens is not UNSET:
            field_dict["input_tokens"] = input_tokens
        if output_tokens is not UNSET:
            field_dict["output_tokens"] = output_tokens

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.run_read_details_type_0 import RunReadDetailsType0  # noqa: PLC0415

        d = dict(src_dict)
        agent = Agent(d.pop("agent"))

        attempt = d.pop("attempt")

        def _parse_details(data: object) -> None | RunReadDetailsType0:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                details_type_0 = RunReadDetailsType0.from_dict(data)

                return details_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RunReadDetailsType0, data)

        details = _parse_details(d.pop("details"))

        def _parse_duration_ms(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        duration_ms = _parse_duration_ms(d.pop("duration_ms"))

        def _parse_error(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        error = _parse_error(d.pop("error"))

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

        def _parse_output(data: object) -> Any | None:
            if data is None:
                return data
            return cast(Any | None, data)

        output = _parse_output(d.pop("output"))

        runner = d.pop("runner")

        started_at = datetime.datetime.fromisoformat(d.pop("started_at"))

        status = RunStatus(d.pop("status"))

        step_id = d.pop("step_id")

        def _parse_cost(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        cost = _parse_cost(d.pop("cost", UNSET))

        def _parse_input_tokens(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        input_tokens = _parse_input_tokens(d.pop("input_tokens", UNSET))

        def _parse_output_tokens(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        output_tokens = _parse_output_tokens(d.pop("output_tokens", UNSET))

        run_read = cls(
            agent=agent,
            attempt=attempt,
            details=details,
            duration_ms=duration_ms,
            error=error,
            finished_at=finished_at,
            id=id,
            output=output,
            runner=runner,
            started_at=started_at,
            status=status,
            step_id=step_id,
            cost=cost,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )

        run_read.additional_properties = d
        return run_read

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
