"""Batch grading: many submissions from a warm parent (`runner`), locally or on Dask (`executors`)."""
