"""The grading checks: pytest modules, one per section, collected when `--submission` is given."""
