from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.agent import Agent
from ..models.step_status import StepStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.retry_policy import RetryPolicy


T = TypeVar("T", bound="StepRead")


@_attrs_define
class StepRead:
    """
    Attributes:
        agent (Agent):
        depends_on (list[str]):
        estimate_ms (int):
        id (str):
        instructions (str):
        phase (int): Depth in the graph: 0 for steps with no dependency.
        status (StepStatus):
        timeout_s (float | None):
        title (str):
        retry (None | RetryPolicy | Unset):
    """

    agent: Agent
    depends_on: list[str]
    estimate_ms: int
    id: str
    instructions: str
    phase: int
    status: StepStatus
    timeout_s: float | None
    title: str
    retry: None | RetryPolicy | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.retry_policy import RetryPolicy  # noqa: PLC0415

        agent = self.agent.value

        depends_on = self.depends_on

        estimate_ms = self.estimate_ms

        id = self.id

        instructions = self.instructions

        phase = self.phase

        status = self.status.value

        timeout_s: float | None
        timeout_s = self.timeout_s

        title = self.title

        retry: dict[str, Any] | None | Unset
        if isinstance(self.retry, Unset):
            retry = UNSET
        elif isinstance(self.retry, RetryPolicy):
            retry = self.retry.to_dict()
        else:
            retry = self.retry

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "agent": agent,
                "depends_on": depends_on,
                "estimate_ms": estimate_ms,
                "id": id,
                "instructions": instructions,
                "phase": phase,
                "status": status,
                "timeout_s": timeout_s,
                "title": title,
            }
        )
        if retry is not UNSET:
            field_dict["retry"] = retry

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.retry_policy import RetryPolicy  # noqa: PLC0415

        d = dict(src_dict)
        agent = Agent(d.pop("agent"))

        depends_on = cast(list[str], d.pop("depends_on"))

        estimate_ms = d.pop("estimate_ms")

        id = d.pop("id")

        instructions = d.pop("instructions")

        phase = d.pop("phase")

        status = StepStatus(d.pop("status"))

        def _parse_timeout_s(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        timeout_s = _parse_timeout_s(d.pop("timeout_s"))

        title = d.pop("title")

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

        step_read = cls(
            agent=agent,
            depends_on=depends_on,
            estimate_ms=estimate_ms,
            id=id,
            instructions=instructions,
            phase=phase,
            status=status,
            timeout_s=timeout_s,
            title=title,
            retry=retry,
        )

        step_read.additional_properties = d
        return step_read

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
