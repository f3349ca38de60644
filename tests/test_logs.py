import asyncio
import logging

from app import logs


class TestBoundFields:
    async def test_fields_bound_in_a_task_reach_its_records_and_its_children(
        self,
    ) -> None:
        records: list[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record)

        logs.configure("INFO")
        logger = logging.getLogger("app.test")
        root = logging.getLogger("app")
        handler = Keep()
        handler.addFilter(root.handlers[0].filters[0])
        root.addHandler(handler)

        async def step() -> None:
            logs.bind(step_id="build")
            logger.info("step.started")

        async def execution() -> None:
            logs.bind(execution_id="e1")
            await asyncio.create_task(step())
            logger.info("execution.finished")

        try:
            await execution()
        finally:
            root.removeHandler(handler)
        started, finished = records
        assert (started.execution_id, started.step_id) == ("e1", "build")
        assert finished.execution_id == "e1"
        assert not hasattr(finished, "step_id")
        line = logs.KeyValueFormatter("%(message)s").format(started)
        assert line == "step.started execution_id=e1 step_id=build"
