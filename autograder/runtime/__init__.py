"""The seam to student code: the grader's side (`submission`), the worker that runs the student's module
(`worker`), a .py file or a notebook as that module (`notebook`), the wire format between them
(`protocol`), the warm fork-server (`forkserver`), banned-API guards (`guards`) and the OS sandbox layers
(`sandbox`)."""
