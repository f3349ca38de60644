from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.agent import Agent
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.retry_policy import RetryPolicy


T = TypeVar("T", bound="StepSpec")


@_attrs_define
class StepSpec:
    """One step as a caller or a template describes it.

    Attributes:
        agent (Agent):
        id (str): Stable slug, unique in a plan.
        depends_on (list[str] | Unset):
        estimate_ms (int | None | Unset):
        instructions (str | Unset):  Default: ''.
        retry (None | RetryPolicy | Unset): Overrides the execution's retry policy.
        timeout_s (float | None | Unset):
        title (str | Unset):  Default: ''.
    """

    agent: Agent
    id: str
    depends_on: list[str] | Unset = UNSET
    estimate_ms: int | None | Unset = UNSET
    instructions: str | Unset = ""
    retry: None | RetryPolicy | Unset = UNSET
    timeout_s: float | None | Unset = UNSET
    title: str | Unset = ""

    def to_dict(self) -> dict[str, Any]:
        from ..models.retry_policy import RetryPolicy  # noqa: PLC0415

        agent = self.agent.value

        id = self.id

        depends_on: list[str] | Unset = UNSET
        if not isinstance(self.depends_on, Unset):
            depends_on = self.depends_on

        estimate_ms: int | None | Unset
        if isinstance(self.estimate_ms, Unset):
            estimate_ms = UNSET
        else:
            estimate_ms = self.estimate_ms

        instructions = self.instructions

        retry: dict[str, Any] | None | Unset
        if isinstance(self.retry, Unset):
            retry = UNSET
        elif isinstance(self.retry, RetryPolicy):
            retry = self.retry.to_dict()
        else:
            retry = self.retry

        timeout_s: float | None | Unset
        if isinstance(self.timeout_s, Unset):
            timeout_s = UNSET
        else:
            timeout_s = self.timeout_s

        title = self.title

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "agent": agent,
                "id": id,
            }
        )
        if depends_on is not UNSET:
            field_dict["depends_on"] = depends_on
        if estimate_ms is not UNSET:
            field_dict["estimate_ms"] = estimate_ms
        if instructions is not UNSET:
            field_dict["instructions"] = instructions
        if retry is not UNSET:
            field_dict["retry"] = retry
        if timeout_s is not UNSET:
            field_dict["timeout_s"] = timeout_s
        if title is not UNSET:
            field_dict["title"] = title

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.retry_policy import RetryPolicy  # noqa: PLC0415

        d = dict(src_dict)
        agent = Agent(d.pop("agent"))

        id = d.pop("id")

        depends_on = cast(list[str], d.pop("depends_on", UNSET))

        def _parse_estimate_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        estimate_ms = _parse_estimate_ms(d.pop("estimate_ms", UNSET))

        instructions = d.pop("instructions", UNSET)

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

        def _parse_timeout_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        timeout_s = _parse_timeout_s(d.pop("timeout_s", UNSET))

        title = d.pop("title", UNSET)

        step_spec = cls(
            agent=agent,
            id=id,
            depends_on=depends_on,
            estimate_ms=estimate_ms,
            instructions=instructions,
            retry=retry,
            timeout_s=timeout_s,
            title=title,
        )

        return step_spec
