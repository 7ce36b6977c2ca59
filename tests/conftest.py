"""Project tests: tests/hostile/ holds hostile *submissions* (graded by tests/test_hostile.py), never tests."""

collect_ignore = ["hostile"]
