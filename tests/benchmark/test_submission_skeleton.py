"""The static checks read a model's skeleton (benchmark.leaderboard.evaluation.skeleton): its large weights' bytes
stay in the file, unread, and every verdict is the one the whole model gets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmark.leaderboard.evaluation import skeleton
from benchmark.leaderboard.evaluation.checks import SubmissionRejected, check_submission
from benchmark.leaderboard.evaluation.skeleton import read_skeleton
from tests.benchmark.test_submission_sandbox import frame_model, save

WEIGHTS_BYTES = 160 * 41 * 4  # frame_model's W


@pytest.fixture
def strip_small(monkeypatch):
    """Strip frame_model's W (26 kB), as a large model's weights are (1 MiB and over)."""
    monkeypatch.setattr(skeleton, "STRIP_BYTES", 1000)


def verdict(path):
    try:
        return check_submission(path)
    except SubmissionRejected as exc:
        return exc.code


def truncated_weights():
    model = frame_model()
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:-4]
    return model


CASES = {
    "good": frame_model,
    "truncated_weights": truncated_weights,
    "custom_domain": lambda: frame_model(opsets=(("", 17), ("com.evil", 1)), domain="com.evil"),
    "off_the_allow_list": lambda: frame_model(
        extra_nodes=[helper.make_node("RandomNormalLike", ["logits"], ["noise"])], post="noise"
    ),
    "two_large_tensors": lambda: frame_model(
        extra_inits=[numpy_helper.from_array(np.zeros((100, 100), np.float32), "unused")]
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stripped_model_gets_the_whole_models_verdict(case, tmp_path, monkeypatch):
    path = save(CASES[case](), tmp_path)
    whole = verdict(path)  # W is under 1 MiB: nothing is stripped

    monkeypatch.setattr(skeleton, "STRIP_BYTES", 1000)
    assert read_skeleton(path).payloads  # W (and any other large tensor) stripped this time
    assert verdict(path) == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # the checker's skeleton is gone


def test_the_checks_read_no_weight_bytes(strip_small, tmp_path):
    path = save(frame_model(), tmp_path)

    skeletons = read_skeleton(path)

    assert len(skeletons.bare) < path.stat().st_size - WEIGHTS_BYTES
    (payload,) = skeletons.payloads
    weights = frame_model().graph.initializer[0].raw_data
    assert path.read_bytes()[payload.offset : payload.offset + payload.length] == weights


def test_a_truncated_large_tensor_is_refused_with_its_sizes(strip_small, tmp_path):
    with pytest.raises(SubmissionRejected) as refused:
        check_submission(save(truncated_weights(), tmp_path))

    assert refused.value.code == "model_invalid"
    sizes = f"has {WEIGHTS_BYTES - 4} bytes of raw data; its shape and type need {WEIGHTS_BYTES}"
    assert sizes in refused.value.message


def test_a_file_that_is_not_protobuf_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x0f" * 64)  # wire type 7: no protobuf message starts like this

    assert verdict(path) == "model_not_onnx"


def test_external_data_in_the_model_itself_is_still_refused(strip_small, tmp_path):
    model = frame_model()
    weights = model.graph.initializer[0]
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="../../etc/passwd")  # beside its raw data: left whole

    assert verdict(save(model, tmp_path)) == "model_external_data"
