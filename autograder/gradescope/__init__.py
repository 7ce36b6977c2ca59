"""Gradescope: the autograder zip (`build`), the wheel of this very grader it bundles (`wheel`), and what
its `run_autograder` does for each submission (`run`)."""
