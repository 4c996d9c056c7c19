import json

import pytest

from training.ml.config import Config, load_config, save_config


def test_file_and_command_line_overrides(tmp_path):
    override = tmp_path / "run.json"
    override.write_text(json.dumps({"model": {"width": 512}, "train.epochs": 3}))
    config = load_config([override], ["model.depth=4", "decode.lm_weights=[1, 2]", "train.amp=false"])
    assert (config.model.width, config.model.depth, config.train.epochs) == (512, 4, 3)
    assert config.decode.lm_weights == [1, 2] and config.train.amp is False
    save_config(config, tmp_path / "full.json")
    assert Config.from_dict(json.loads((tmp_path / "full.json").read_text())) == config


def test_unknown_settings_are_refused():
    with pytest.raises(KeyError):
        load_config([], ["model.widht=3"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--set", "model.colour=red", "--run", "x"], "has no setting 'colour'"),
        (["train", "--set", "train.epochs=many", "--run", "x"], "cannot be used"),
        (["train", "--config", "/nonexistent/override.json", "--run", "x"], "cannot be used"),
        (["evaluate", "--set", "decode.lm_weights=[1,", "--run", "x"], "cannot be used"),
    ],
)
def test_the_cli_refuses_a_bad_configuration_with_a_sentence(argv, message, capsys):
    from training.ml.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_the_cli_names_a_run_that_does_not_exist(tmp_path, capsys):
    from training.ml.__main__ import main

    assert main(["evaluate", "--set", f"work_dir={tmp_path}", "--run", str(tmp_path / "nope")]) == 1
    assert "nope/config.json does not exist" in capsys.readouterr().err
