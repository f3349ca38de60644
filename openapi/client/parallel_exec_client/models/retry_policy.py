from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.retry_policy_retry_on_item import RetryPolicyRetryOnItem
from ..types import UNSET, Unset

T = TypeVar("T", bound="RetryPolicy")


@_attrs_define
class RetryPolicy:
    """When a step is run again, and how long to wait before each new attempt.

    The wait before attempt n+1 is ``backoff_s * backoff_multiplier ** (n - 1)``,
    capped at ``backoff_max_s``, then shortened by a random share of up to
    ``jitter`` so that many retries do not start in step. A cancel is never
    retried; an interruption is a run cut off by the service stopping or dying.

        Attributes:
            backoff_max_s (float | Unset):  Default: 60.0.
            backoff_multiplier (float | Unset):  Default: 2.0.
            backoff_s (float | Unset):  Default: 1.0.
            jitter (float | Unset): Up to this share of a wait is random. Default: 0.5.
            max_attempts (int | Unset): Runs allowed in all, the first one included. Default: 3.
            retry_on (list[RetryPolicyRetryOnItem] | Unset): Outcomes worth another attempt: failed, timed_out, interrupted.
    """

    backoff_max_s: float | Unset = 60.0
    backoff_multiplier: float | Unset = 2.0
    backoff_s: float | Unset = 1.0
    jitter: float | Unset = 0.5
    max_attempts: int | Unset = 3
    retry_on: list[RetryPolicyRetryOnItem] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        backoff_max_s = self.backoff_max_s

        backoff_multiplier = self.backoff_multiplier

        backoff_s = self.backoff_s

        jitter = self.jitter

        max_attempts = self.max_attempts

        retry_on: list[str] | Unset = UNSET
        if not isinstance(self.retry_on, Unset):
            retry_on = []
            for retry_on_item_data in self.retry_on:
                retry_on_item = retry_on_item_data.value
                retry_on.append(retry_on_item)

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if backoff_max_s is not UNSET:
            field_dict["backoff_max_s"] = backoff_max_s
        if backoff_multiplier is not UNSET:
            field_dict["backoff_multiplier"] = backoff_multiplier
        if backoff_s is not UNSET:
            field_dict["backoff_s"] = backoff_s
        if jitter is not UNSET:
            field_dict["jitter"] = jitter
        if max_attempts is not UNSET:
            field_dict["max_attempts"] = max_attempts
        if retry_on is not UNSET:
            field_dict["retry_on"] = retry_on

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        backoff_max_s = d.pop("backoff_max_s", UNSET)

        backoff_multiplier = d.pop("backoff_multiplier", UNSET)

        backoff_s = d.pop("backoff_s", UNSET)

        jitter = d.pop("jitter", UNSET)

        max_attempts = d.pop("max_attempts", UNSET)

        _retry_on = d.pop("retry_on", UNSET)
        retry_on: list[RetryPolicyRetryOnItem] | Unset = UNSET
        if _retry_on is not UNSET:
            retry_on = []
            for retry_on_item_data in _retry_on:
                retry_on_item = RetryPolicyRetryOnItem(retry_on_item_data)

                retry_on.append(retry_on_item)

        retry_policy = cls(
            backoff_max_s=backoff_max_s,
            backoff_multiplier=backoff_multiplier,
            backoff_s=backoff_s,
            jitter=jitter,
            max_attempts=max_attempts,
            retry_on=retry_on,
        )

        return retry_policy
