"""Recipes: what each kind of run changes on the base training config (sizes come from the base config file).

Order of precedence: training.ml defaults, the base config file (``TRAINING_BASE_CONFIG``: the sizes this
deployment trains at), the recipe, then the run's own overrides. Shallow nets (on labels or mimics) get the
hidden width that matches the deep MLP teacher's parameter count at the same base size, unless the run's
overrides give one: the paper's comparison is at equal parameters. The BiLSTM teacher and the BiLSTM-CTC peer
(issue #17) are 3 x 256 per direction over whole utterances of the same features, whatever the base's MLP size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.ml.config import Config, apply_overrides, load_config
from training.models import TrainingRecipe

OBJECTIVES = ("mimic_l2", "mimic_soft")
BLSTM_SHAPE = {"depth": 3, "width": 256}  # layers, units per direction: the peer, measured at this size
# Utterances per CTC update. A CTC net first learns to say nothing but blank (PER 100 %) and leaves that plateau only
# after some thousand updates: on the shared half, 16 utterances a batch (119 updates an epoch) was still there after 3
# epochs; 4 (475 an epoch) left it in the third (docs/training.md, "The BiLSTM-CTC peer and its plateau").
CTC_SEQUENCE_BATCH = 4


class RecipeError(ValueError):
    """A recipe or override that cannot make a config; the message says which setting."""


def base_config(path: str | Path) -> Config:
    try:
        return load_config([path])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RecipeError(f"The base training config {path} cannot be read: {exc}") from exc


def recipe_config(
    recipe: str, *, base: str | Path, overrides: dict[str, Any] | None = None, objective: str = "mimic_l2"
) -> Config:
    """The full config of a new run: base file, recipe, overrides; RecipeError names what is wrong."""
    if recipe not in TrainingRecipe.values:
        raise RecipeError(f"Unknown recipe {recipe!r}; one of {', '.join(TrainingRecipe.values)}.")
    config = base_config(base)
    teacher_width, teacher_depth = config.model.width, config.model.depth
    if recipe == TrainingRecipe.TEACHER_DNN:
        config.model.kind = "dnn"
    elif recipe == TrainingRecipe.TEACHER_CNN:
        config.model.kind = "cnn"
    elif recipe == TrainingRecipe.ENSEMBLE:
        config.model.kind = "ensemble"
    elif recipe in (TrainingRecipe.TEACHER_BLSTM, TrainingRecipe.BLSTM_CTC):
        config.model.kind = "blstm"
        config.model.depth, config.model.width = BLSTM_SHAPE["depth"], BLSTM_SHAPE["width"]
        config.train.objective = "ctc" if recipe == TrainingRecipe.BLSTM_CTC else "labels"
        if recipe == TrainingRecipe.BLSTM_CTC:
            config.train.sequence_batch = CTC_SEQUENCE_BATCH
    else:
        # Here, not at the top: this module is imported wherever Django starts (the admin, the web server, every
        # worker), and training.ml's models bring PyTorch (a second of CPU and 300 MB per process that never trains).
        from training.ml.features import input_dim
        from training.ml.models import DNN, count_parameters, snn_width_for

        config.model.kind = "snn"
        config.model.dropout = 0.0
        inputs = input_dim(config.features)
        matched = count_parameters(DNN(inputs, teacher_depth, teacher_width))
        config.model.width = snn_width_for(matched, config.model.bottleneck, inputs)
        if recipe == TrainingRecipe.MIMIC:
            if objective not in OBJECTIVES:
                raise RecipeError(f"A mimic's objective is one of {', '.join(OBJECTIVES)}, not {objective!r}.")
            config.train.objective = objective
    try:
        apply_overrides(config, overrides or {})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RecipeError(f"The run's config overrides are not valid: {exc}") from exc
    expected = "ctc" if recipe == TrainingRecipe.BLSTM_CTC else "labels"
    if recipe != TrainingRecipe.MIMIC and config.train.objective != expected:
        raise RecipeError(f"Only mimic runs train on a teacher; {recipe} trains on {expected}.")
    return config
