"""The report (`document`: build, validate, write; `schema/`) and its views: the terminal table (`terminal`),
other tools' formats (`exports`: GitHub Classroom, Gradescope), the batch gradebook (`gradebook`) and the
HTML pages (`html` for a student, `html_batch` for a batch's index; `source` finds the student's lines)."""
