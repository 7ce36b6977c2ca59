"""The `attention` assignment: single-head scaled dot-product attention in four sections (seed 002).

contract.py (functions, sections, the worked example), defaults.toml (points, tolerances, banned APIs, the
model), inputs.py (random problems), mistakes.py (the catalogue), checks/ (the pytest checks; test_model.py
is the capstone in distilgpt2's block 0). The reference is reference/attention.py.
"""
from autograder.assignments.attention.contract import ASSIGNMENT

__all__ = ["ASSIGNMENT"]
