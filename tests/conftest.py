"""Project tests: tests/hostile/ holds hostile *submissions* (graded by tests/test_hostile.py) and
tests/fixtures/ installable packages (a course's own assignment, with its checks), never tests."""

collect_ignore = ["hostile", "fixtures"]
