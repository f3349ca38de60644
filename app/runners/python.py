"""The python runner: a function in the same process carries out each step.

The function takes the step's ``StepContext``. A coroutine function is awaited;
a plain function runs in a worker thread so that it cannot block the event loop
(a cancel then stops waiting for it, but the thread runs to its end). It returns
the step's output, or a ``StepResult`` to also write shared state; an exception
fails the run with its message (``RunFailed`` keeps its details).
"""

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from app.runners.base import Progress, StepContext, StepResult

StepFunction = Callable[[StepContext], Any]


class PythonRunner:
    kind = "python"

    def __init__(self, function: StepFunction) -> None:
        if not callable(function):
            raise TypeError(f"{function!r} is not callable")
        self.function = function

    async def run(self, context: StepContext, progress: Progress) -> StepResult:
        """Call the function with the step's context and return what it gave."""
        if inspect.iscoroutinefunction(self.function):
            value = await self.function(context)
        else:
            value = await asyncio.to_thread(self.function, context)
            if inspect.isawaitable(value):
                value = await value
        if isinstance(value, StepResult):
            return value
        return StepResult(output=value)
