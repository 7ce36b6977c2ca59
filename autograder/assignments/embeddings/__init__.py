"""The `embeddings` assignment: token embeddings and sinusoidal positions (seeds 003 module 11).

contract.py (functions, sections, the worked example), defaults.toml (points, tolerances, banned APIs),
inputs.py (random problems), mistakes.py (the catalogue), checks/ (the pytest checks). The reference is
reference/embeddings.py.
"""
from autograder.assignments.embeddings.contract import ASSIGNMENT

__all__ = ["ASSIGNMENT"]
