"""The `block` assignment: the pre-LN transformer block, GPT-2 style (seeds 003 module 13, 004).

contract.py (functions, sections, the worked example), defaults.toml (points, tolerances, banned APIs, the
model), inputs.py (random problems), mistakes.py (the catalogue), gpt2_params.py (a GPT2Block's weights as
the contract's params), capstone.py (the student's block as GPT-2's block 0), checks/ (the pytest checks;
test_model.py is the capstone). The reference is reference/block.py.
"""
from autograder.assignments.block.contract import ASSIGNMENT

__all__ = ["ASSIGNMENT"]
