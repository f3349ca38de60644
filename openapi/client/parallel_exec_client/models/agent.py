from enum import StrEnum


class Agent(StrEnum):
    ARCHITECT = "architect"
    BUILDER = "builder"
    DOCS = "docs"
    EXPLORE = "explore"
    INTEGRATIONS = "integrations"
    QUALITY = "quality"
    REFACTOR = "refactor"
    RESEARCHER = "researcher"
    REVIEWER = "reviewer"
    SECURITY = "security"
    UI = "ui"

    def __str__(self) -> str:
        return str(self.value)
