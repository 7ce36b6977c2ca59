"""What a failed check tells the student: a message (what is wrong) and a hint (what to do)."""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

Diagnose = Callable[[], Any]  # returns an `autograder.diagnosis.Mistake` or None


class Diagnosable:
    """An exception that may name a classic mistake: `diagnose`, when set, runs once, on the failure that
    is finally reported (hypothesis raises many while shrinking), and its hint replaces `hint`."""

    hint: Optional[str] = None
    mistake: Optional[str] = None
    diagnose: Optional[Diagnose] = None

    def resolve(self) -> None:
        """Run the diagnosis (at most once) and adopt its hint when it names a mistake."""
        diagnose, self.diagnose = self.diagnose, None
        found = diagnose() if diagnose is not None else None
        if found is not None:
            self.hint, self.mistake = found.hint, found.id


class CheckFailed(Diagnosable, AssertionError):
    """Raised by a grading check; the plugin turns it into the report's `message` and `hint`."""

    def __init__(self, message: str, hint: Optional[str] = None, mistake: Optional[str] = None,
                 diagnose: Optional[Diagnose] = None) -> None:
        super().__init__(message)
        self.message, self.hint, self.mistake, self.diagnose = message, hint, mistake, diagnose


class NotGraded(Exception):
    """Raised by a check this machine cannot run (no model at all): the check is reported as not graded,
    never as points the student lost; `reason` (one line) says what is missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


ERROR_HINTS = {  # by SubmissionError kind: the hint when nothing more specific is known
    "missing": "define every function of the contract with exactly the names in the assignment's template",
    "raised": "run your function on the example from the template to reproduce the error",
    "banned": "this assignment asks you to write that computation yourself, from the contract's functions",
    "load": "your file must import cleanly: run `python yourfile.py` to see the problem",
    "timeout": "look for a loop that never ends, or work that grows far beyond the tensor sizes",
    "crashed": "do not call sys.exit/os._exit, and keep memory use to what the tensors need",
}


def hint_for(error: "Exception", example_passed: bool = False) -> Optional[str]:
    """The standard hint for a SubmissionError kind (`error.kind`); never "run the example" for an error
    when the worked example ran fine (`example_passed`)."""
    kind = getattr(error, "kind", "")
    if kind == "raised" and is_stub(getattr(error, "raised", None)):
        return STUB
    if kind == "raised" and example_passed:
        return RAISED_BUT_EXAMPLE_PASSED
    return ERROR_HINTS.get(kind)


def is_stub(raised: Optional[Tuple[str, str]]) -> bool:
    """Whether what the student's code raised (type name, message) is a template's TODO left as handed out."""
    return bool(raised) and raised[0] == "NotImplementedError"


STUB = "this function is still the template's: replace its `raise NotImplementedError(...)` with your code"


RAISED_BUT_EXAMPLE_PASSED = ("your function runs on the worked example but raises on the input the message names: "
                             "call it with those shapes, that dtype and that mask to reproduce the error")
GENERIC_HINTS = frozenset(ERROR_HINTS.values()) | {RAISED_BUT_EXAMPLE_PASSED}  # what no diagnosis looks like
