"""The `multihead` assignment: multi-head causal self-attention (seeds 003 module 12, 004).

contract.py (functions, sections, the worked example), defaults.toml (points, tolerances, banned APIs, the
model), inputs.py (random problems), mistakes.py (the catalogue), capstone.py (the student's attention as
GPT-2's block-0 attention module), checks/ (the pytest checks; test_model.py is the capstone). The
reference is reference/multihead.py.
"""
from autograder.assignments.multihead.contract import ASSIGNMENT

__all__ = ["ASSIGNMENT"]
