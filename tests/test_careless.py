"""Careless course configs and model folders, tried as a new user would: one clear error, exit 2, no
traceback, nothing graded with settings that would make every grade wrong."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder import cli
from autograder.config import ConfigError, load_config
from autograder.model.loading import ModelUnavailableError, load_mini_transformer
from tests.grading_helpers import CORRECT, fast_config

CARELESS = {
    "string_number": ("[tolerance.float64]\nrtol = \"1e-4\"\n", "tolerance.float64.rtol must be a number"),
    "misspelled_points": ("[points]\n\"softmax.masked_zero\" = 10\n",
                          ("unknown check id 'softmax.masked_zero' in [points] (did you mean "
                           "'softmax.masked_exact_zero'?)")),
    "misspelled_hidden": ("hidden = [\"attention.permutation\"]\n", "unknown check id 'attention.permutation' in hidden"),
    "unknown_section": ("[timeout]\ncall_s = 5\n", "unknown section 'timeout'"),
    "unknown_key": ("[timeouts]\ncall_seconds = 5\n", "unknown setting 'timeouts.call_seconds'"),
    "zero_time": ("[timeouts]\ncheck_s = 0\n", "timeouts.check_s must be above 0"),
    "negative_points": ("[points]\n\"scores.values\" = -4\n", "0 or more"),
    "string_bool": ("[model]\nenabled = \"no\"\n", "model.enabled must be true/false"),
    "fractional_count": ("[hypothesis]\nmax_examples = 2.5\n", "must be a whole number"),
    "table_as_value": ("points = 3\n", "points must be a table"),
}


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "course.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(CARELESS))
def test_load_config_names_the_file_and_the_problem(tmp_path: Path, name: str) -> None:
    text, fragment = CARELESS[name]
    with pytest.raises(ConfigError) as raised:
        load_config(_config(tmp_path, text))
    assert fragment in str(raised.value) and "course.toml" in str(raised.value)


def test_every_problem_of_a_file_is_listed_at_once(tmp_path: Path) -> None:
    names = ("misspelled_hidden", "string_number", "unknown_section", "string_bool", "fractional_count")
    text = "".join(CARELESS[name][0] for name in names)  # the top-level key first, then the tables
    with pytest.raises(ConfigError) as raised:
        load_config(_config(tmp_path, text))
    message = str(raised.value)
    for key in ("rtol", "attention.permutation", "'timeout'", "model.enabled", "max_examples"):
        assert key in message


@pytest.mark.parametrize("command", ["grade", "batch"])
@pytest.mark.parametrize("name", ["string_number", "misspelled_points", "unknown_section"])
def test_grade_and_batch_exit_2_with_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     command: str, name: str) -> None:
    config = _config(tmp_path, CARELESS[name][0])
    where = ["--json", str(tmp_path / "r.json")] if command == "grade" else ["--out", str(tmp_path / "out")]
    assert cli.main([command, str(CORRECT), "--config", str(config), *where]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert CARELESS[name][1] in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists() and not list((tmp_path / "out").glob("*.json"))


def test_check_ids_are_the_chosen_assignments_and_each_table_its_own(tmp_path: Path) -> None:
    """Top-level check ids are judged against the assignment being graded; an [assignments.NAME] table
    against assignment NAME's ids and settings, whichever assignment is graded."""
    top = _config(tmp_path, '[points]\n"softmax.values" = 3\n')
    assert load_config(top, assignment="attention").points("softmax.values") == 3
    with pytest.raises(ConfigError, match="unknown check id 'softmax.values' in \\[points\\]"):
        load_config(top, assignment="multihead")
    table = _config(tmp_path, '[assignments.multihead.points]\n"softmax.values" = 3\n'
                              '[assignments.block.timeouts]\ncheck_s = "5"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(table, assignment="attention")
    message = str(raised.value)
    assert "unknown check id 'softmax.values' in [assignments.multihead.points]" in message
    assert "assignments.block.timeouts.check_s must be a number" in message


def test_batch_stops_when_the_reference_loses_points(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A config under which the reference itself cannot get full marks (here: a model that cannot be
    loaded) grades nobody: exit 2 and the reason, no gradebook."""
    text = fast_config(max_examples=3).replace("enabled = false", f"enabled = true\nname = \"{tmp_path / 'no-model'}\"")
    config = _config(tmp_path, text)
    out = tmp_path / "out"
    assert cli.main(["batch", str(CORRECT), "--out", str(out), "--config", str(config)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "the reference implementation scored 80/100" in err and "model.runs" in err
    assert not (out / "gradebook.csv").exists() and not (out / "correct.json").exists()


def test_the_unit_of_work_refuses_too(tmp_path: Path) -> None:
    """On a Dask worker the warm-up happens inside `grade_job`: it raises instead of grading (the batch then
    stops with exit 2), and writes no report."""
    from autograder.batch import runner

    text = fast_config(max_examples=3).replace("enabled = false", f"enabled = true\nname = \"{tmp_path / 'no-model'}\"")
    settings = runner.Settings.create(tmp_path / "out", _config(tmp_path, text), None)
    try:
        with pytest.raises(runner.ReferenceLosesPoints, match="reference implementation scored 80/100"):
            runner.grade_job(runner.Job(CORRECT, "correct", settings))
    finally:
        runner.forkserver.shutdown()  # warm() started one for this process
    assert not (tmp_path / "out" / "correct.json").exists()


def test_a_model_folder_without_tokenizer_files_says_so(tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=32, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "model")
    with pytest.raises(ModelUnavailableError) as raised:
        load_mini_transformer(str(tmp_path / "model"), device="cpu")
    message = str(raised.value)
    assert "no tokenizer files" in message and "config.json" in message and "save_pretrained" in message


def test_a_careful_config_passes(tmp_path: Path) -> None:
    """Fractions where they make sense (seconds, points), ints for counts, every documented key."""
    text = ('hidden = ["attention.permutation_equivariance"]\nvalues_first = false\n[points]\n"scores.values" = 2.5\n'
            "[timeouts]\ncheck_s = 2.5\n[hypothesis]\nmax_examples = 3\n[model]\nname = \"./my-model\"\n"
            "[tolerance.float32]\natol = 0\n")
    config = load_config(_config(tmp_path, text))
    assert config.points("scores.values") == 2.5 and config.timeout("check_s") == 2.5 and not config.values_first


def test_watch_stops_when_the_reference_loses_points(tmp_path: Path) -> None:
    """The same config in `autograder watch`: exit 2 with the reason, before any grade (its first grade
    raised ReferenceLosesPoints out of the unit of work, a traceback, before)."""
    import io

    from autograder.watch import watch

    text = fast_config(max_examples=3).replace("enabled = false", f"enabled = true\nname = \"{tmp_path / 'no-model'}\"")
    out = io.StringIO()
    assert watch(CORRECT, tmp_path / "report.json", config_file=_config(tmp_path, text), out=out,
                 stop=lambda grades: grades >= 1) == 2
    assert "the reference implementation scored 80/100" in out.getvalue()
    assert not (tmp_path / "report.json").exists()


def test_a_loaded_config_shares_nothing_with_the_next_one() -> None:
    """The packaged defaults are read once per process: an edited config (a list in it) must not change the next."""
    first = load_config(None, "block")
    first.data["sandbox"]["banned"].append("edited")
    assert "edited" not in load_config(None, "block").data["sandbox"]["banned"]
