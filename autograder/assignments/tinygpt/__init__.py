"""The `tinygpt` assignment: the whole GPT forward pass, and the milestone: train it on Tiny Shakespeare
(seeds 003 milestone 05).

contract.py (the function, sections), defaults.toml (points, tolerances, the milestone's budget and gate),
inputs.py (random problems), mistakes.py (the catalogue), milestone.py (training the student's forward
through the seam; the loss by the reference forward), checks/ (the pytest checks). Reference:
reference/tinygpt.py.
"""
from autograder.assignments.tinygpt.contract import ASSIGNMENT

__all__ = ["ASSIGNMENT"]
