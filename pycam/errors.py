"""One error type for everything the user can fix: what is wrong, and what to run."""


class PycamError(Exception):
    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.problem}\n  -> {self.hint}" if self.hint else self.problem
