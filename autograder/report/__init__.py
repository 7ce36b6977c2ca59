"""The report (`document`: build, validate, write; `schema/`) and its views: the terminal table (`terminal`),
other tools' formats (`exports`: GitHub Classroom, Gradescope) and the batch gradebook (`gradebook`)."""
