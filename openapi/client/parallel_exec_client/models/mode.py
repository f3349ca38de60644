from enum import StrEnum


class Mode(StrEnum):
    AUTO = "auto"
    CHAIN = "chain"
    DECOMPOSE = "decompose"
    EXPLICIT = "explicit"

    def __str__(self) -> str:
        return str(self.value)
