"""Diagnosis: names the mistake behind a wrong answer (`engine`), reads a mistake's parameter off the
student's own output (`parametric`), and explains an error by the input kind that causes it (`errors`).
Trusted side only: nothing here runs student code except through the seam (`errors.explain`)."""
from autograder.diagnosis.engine import (
    ANY_SECTION,
    GRADIENT_MISTAKES,
    Catalogue,
    Fitted,
    GradedRows,
    Lift,
    Mistake,
    Output,
    Rule,
    gradient_mistake,
    named,
    rows_allowed_by_mask,
)

__all__ = ["ANY_SECTION", "GRADIENT_MISTAKES", "Catalogue", "Fitted", "GradedRows", "Lift", "Mistake", "Output",
           "Rule", "gradient_mistake", "named", "rows_allowed_by_mask"]
