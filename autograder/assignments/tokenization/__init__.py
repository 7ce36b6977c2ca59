"""The `tokenization` assignment: a character tokenizer and GPT-2's byte-level BPE (seeds 003 module 10).

contract.py (functions, sections), defaults.toml (points, where GPT-2's files are), inputs.py (texts, merges,
byte maps; GPT-2's files), exact.py (exact comparison and naming the mistake), mistakes.py (the catalogue),
checks/ (the pytest checks). The reference is reference/tokenization.py.
"""
from autograder.assignments.tokenization.contract import ASSIGNMENT

__all__ = ["ASSIGNMENT"]
