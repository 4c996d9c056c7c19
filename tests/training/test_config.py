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
