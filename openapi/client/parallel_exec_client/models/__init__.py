"""Contains all the data models used in inputs/outputs"""

from .agent import Agent
from .budget import Budget
from .error_body import ErrorBody
from .error_detail import ErrorDetail
from .error_detail_details import ErrorDetailDetails
from .event_page import EventPage
from .event_read import EventRead
from .event_read_data import EventReadData
from .event_type import EventType
from .execution_config import ExecutionConfig
from .execution_config_state_merge import ExecutionConfigStateMerge
from .execution_create import ExecutionCreate
from .execution_page import ExecutionPage
from .execution_read import ExecutionRead
from .execution_result import ExecutionResult
from .execution_result_runs_by_status import ExecutionResultRunsByStatus
from .execution_result_steps_by_status import ExecutionResultStepsByStatus
from .execution_status import ExecutionStatus
from .health_live_response_health_live import HealthLiveResponseHealthLive
from .merge_rule import MergeRule
from .mode import Mode
from .plan_input import PlanInput
from .plan_read import PlanRead
from .profile_read import ProfileRead
from .profile_read_runners import ProfileReadRunners
from .retry_policy import RetryPolicy
from .retry_policy_retry_on_item import RetryPolicyRetryOnItem
from .run_read import RunRead
from .run_read_details_type_0 import RunReadDetailsType0
from .run_status import RunStatus
from .state_entry_read import StateEntryRead
from .state_writer_read import StateWriterRead
from .step_read import StepRead
from .step_spec import StepSpec
from .step_status import StepStatus
from .task_type import TaskType

__all__ = (
    "Agent",
    "Budget",
    "ErrorBody",
    "ErrorDetail",
    "ErrorDetailDetails",
    "EventPage",
    "EventRead",
    "EventReadData",
    "EventType",
    "ExecutionConfig",
    "ExecutionConfigStateMerge",
    "ExecutionCreate",
    "ExecutionPage",
    "ExecutionRead",
    "ExecutionResult",
    "ExecutionResultRunsByStatus",
    "ExecutionResultStepsByStatus",
    "ExecutionStatus",
    "HealthLiveResponseHealthLive",
    "MergeRule",
    "Mode",
    "PlanInput",
    "PlanRead",
    "ProfileRead",
    "ProfileReadRunners",
    "RetryPolicy",
    "RetryPolicyRetryOnItem",
    "RunRead",
    "RunReadDetailsType0",
    "RunStatus",
    "StateEntryRead",
    "StateWriterRead",
    "StepRead",
    "StepSpec",
    "StepStatus",
    "TaskType",
)
