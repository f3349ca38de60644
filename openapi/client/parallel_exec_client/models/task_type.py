from enum import StrEnum


class TaskType(StrEnum):
    DOCS = "docs"
    EXTEND = "extend"
    FIX = "fix"
    IMPLEMENT = "implement"
    INTEGRATION = "integration"
    REFACTOR = "refactor"
    RESEARCH = "research"
    SECURITY = "security"
    TEST = "test"
    UI = "ui"

    def __str__(self) -> str:
        return str(self.value)
