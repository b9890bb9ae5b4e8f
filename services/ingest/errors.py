"""The one error an import ends with: a phase and a message a person can act on."""


class ImportFailed(Exception):
    def __init__(self, phase: str, message: str):
        super().__init__(message)
        self.phase = phase
        self.message = message

    def __str__(self) -> str:
        return self.message
