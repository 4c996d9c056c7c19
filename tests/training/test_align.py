import numpy as np
import pytest
import torch

from speech.lexicon import SILENCE_INDEX
from training.ml.align import flat_start_labels, phone_segments


def word_agreement(store, labels: torch.Tensor, truths: list[np.ndarray]) -> float:
    """Fraction of frames whose word (or silence) in the alignment is the word being spoken."""
    hits = total = 0
    for u, utt in enumerate(store.utterances):
        lab = labels[int(store.offsets[u]) : int(store.offsets[u + 1])].numpy()
        owners = [k for k, word in enumerate(utt.words) for _ in word]
        words = np.full(len(lab), -1)
        k = 0
        for phone, start, end in phone_segments(lab):
            if phone != SILENCE_INDEX:
                words[start:end] = owners[min(k, len(owners) - 1)]
                k += 1
        truth = truths[u][: len(lab)]
        hits += int((words == truth).sum())
        total += len(truth)
    return hits / total


def test_realignment_improves_on_the_flat_start_and_settles(tiny):
    store, labels, history = tiny["store"], tiny["labels"], tiny["history"]
    truths = tiny["corpus"].word_frames
    flat = word_agreement(store, flat_start_labels(store), truths)
    aligned = word_agreement(store, labels, truths)
    print(f"word/silence frame agreement: flat start {flat:.3f} -> realigned {aligned:.3f}; rounds {history}")
    assert aligned > flat + 0.05
    assert aligned > 0.83
    assert history[-1]["changed"] < history[0]["changed"]


def test_phn_files(tiny, tmp_path):
    from training.ml.align import write_phn

    write_phn(tiny["store"], tiny["labels"], tmp_path)
    first = (tmp_path / "tiny000.phn").read_text().split("\n")[0].split()
    assert first[0] == "0" and int(first[1]) > 0


def test_a_store_without_a_train_split_is_refused_not_aligned_on_its_test_labels():
    from training.ml.align import align_corpus
    from training.ml.config import Config
    from training.ml.data import FrameStore, MissingSplit, Utterance
    from training.ml.features import Normaliser

    utterances = [Utterance(utt_id="u1", speaker="s", audio="", text="a", split="test", words=[["AH"]])]
    store = FrameStore(utterances, torch.zeros(20, 123), torch.tensor([0, 20]), Normaliser(), 7)
    with pytest.raises(MissingSplit, match="train"):
        align_corpus(store, Config(), progress=False)
