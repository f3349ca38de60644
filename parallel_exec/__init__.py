"""parallel-exec for Python: plan a software task and run its agents in parallel.

from parallel_exec import ExecutorConfig, ParallelAgentExecutor

executor = ParallelAgentExecutor()              # in-process, embedded SQLite
executor = ParallelAgentExecutor("http://127.0.0.1:8000", api_key="...")
result = await executor.execute(
    task_description="Implement login and register features",
    config=ExecutorConfig(fail_fast=True, enable_parallel=True, dry_run=False),
)
"""

from app.events.types import EventRead, EventType
from app.execution.schemas import (
    ExecutionPage,
    ExecutionRead,
    ExecutionResult,
    PlanRead,
    RunRead,
)
from app.execution.status import ExecutionStatus, RunStatus, StepStatus
from app.planning.models import Mode, RetryPolicy, StepSpec
from app.runners.base import RunFailed, StepContext, StepResult
from parallel_exec.config import ExecutorConfig
from parallel_exec.errors import ParallelExecError, RequestRejected, ServiceUnreachable
from parallel_exec.executor import ChainExecutor, ParallelAgentExecutor
from parallel_exec.results import ExecutionReport

__all__ = [
    "ChainExecutor",
    "EventRead",
    "EventType",
    "ExecutionPage",
    "ExecutionRead",
    "ExecutionReport",
    "ExecutionResult",
    "ExecutionStatus",
    "ExecutorConfig",
    "Mode",
    "ParallelAgentExecutor",
    "ParallelExecError",
    "PlanRead",
    "RequestRejected",
    "RetryPolicy",
    "RunFailed",
    "RunRead",
    "RunStatus",
    "ServiceUnreachable",
    "StepContext",
    "StepResult",
    "StepSpec",
    "StepStatus",
]
