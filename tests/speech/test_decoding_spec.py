"""The leaderboard's decoders are a published specification (speech.decoding, docs/submission-spec.md): the document
and the code name the same version and parameters, and a fixed input decodes to the same phones, so a change to the
training code (or anything else) cannot move published scores without a new specification version."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from speech import decoding
from speech.phones import INVENTORY

SPEC = (Path(__file__).resolve().parents[2] / "docs" / "submission-spec.md").read_text()


def test_the_document_and_the_code_name_one_version_and_the_same_parameters():
    assert re.match(r"# Submission specification, version (\d+)\n", SPEC).group(1) == str(decoding.SPEC_VERSION)
    hmm = SPEC[SPEC.index("## The `hmm_bigram` decoder") :]
    assert f"a left-to-right HMM of {decoding.STATES_PER_PHONE} states" in hmm
    assert f"loops with probability {decoding.HMM_SELF_LOOP}" in hmm
    assert f"add-{decoding.BIGRAM_ADD} smoothing" in hmm
    assert f"`P = {decoding.N_PHONES}`" in SPEC and " ".join(INVENTORY) in SPEC


def _fixed_log_probs(seed: int, frames: int, classes: int) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(frames, classes)).astype(np.float32) * 3
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def test_version_1_decodes_a_fixed_input_to_the_same_phones():
    """Golden outputs of version 1. If this fails, the decoders changed: raise SPEC_VERSION and the document's
    version together and say what changed, or undo the change."""
    frames = _fixed_log_probs(11, 40, decoding.N_PHONES)
    assert " ".join(decoding.decode_greedy(frames, ctc=False)) == GREEDY_V1
    ctc = _fixed_log_probs(12, 40, decoding.N_PHONES + 1)
    assert " ".join(decoding.decode_greedy(ctc, ctc=True)) == GREEDY_CTC_V1
    decoder = decoding.hmm_bigram_decoder([[["AH", "B"], ["K", "AE", "T"]], [["S", "IY"]], [["T", "UW"]]])
    (phones,) = decoding.decode_hmm_bigram(decoder, [_fixed_log_probs(13, 60, decoding.N_PHONES)])
    assert " ".join(phones) == HMM_BIGRAM_V1


GREEDY_V1 = "EH W Z ZH Z IH HH NG AW JH SH M Z UW V B ER K F OW Z UH JH TH ZH N TH AH F IH AW HH AO Z AH SH EY P AO P"
GREEDY_CTC_V1 = "JH SH AO HH OY SH AA TH V SH P SH F S IH ZH HH UW IY OW OY W AO R Z T K M R IY R UW TH NG CH"
HMM_BIGRAM_V1 = "M OW SH V OW IY AO CH EH NG ER EY Z NG"
