"""Assignments: the unit of the course. Each one declares its contract, defaults, checks, reference,
mistake catalogue and capstone (see README.md in this folder); the registry finds the installed ones."""
from autograder.assignments.registry import AssignmentError, choose, defined_names, get, infer, installed
from autograder.assignments.spec import Assignment, Composition, Example, Function, Step

__all__ = ["Assignment", "AssignmentError", "Composition", "Example", "Function", "Step", "choose",
           "defined_names", "get", "infer", "installed"]
