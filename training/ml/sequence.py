"""Whole-utterance batches for sequence models (the BiLSTM teacher and the BiLSTM-CTC peer): padding, logits per
utterance, and their losses (cross-entropy on the frame targets, or CTC on the canonical phones)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from speech.lexicon import N_PHONES, PHONE_INDEX
from training.ml.data import FrameStore

BLANK = N_PHONES  # the CTC blank is the last output, after the 40 units
IGNORE = -100  # padded frames' target: cross-entropy skips them


def utterances_of(store: FrameStore, positions: torch.Tensor) -> list[int]:
    """The utterances whose frames ``positions`` lists, each whole and in order (what frame_positions gives);
    a sequence model cannot score a frame without the rest of its utterance."""
    if not len(positions):
        return []
    utt_ids = [int(u) for u in torch.unique_consecutive(store.frame_utt[positions])]
    expected = store.frame_positions(utt_ids)
    if len(expected) != len(positions) or not torch.equal(expected, positions.to(expected.device)):
        raise ValueError("a sequence model scores whole utterances: these frame positions are not")
    return utt_ids


def padded(store: FrameStore, utt_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 123) unspliced frames of ``utt_ids``, zero-padded, and their lengths (on the CPU, as packing wants)."""
    starts = [int(store.offsets[u]) for u in utt_ids]
    ends = [int(store.offsets[u + 1]) for u in utt_ids]
    x = nn.utils.rnn.pad_sequence([store.frames[a:b] for a, b in zip(starts, ends, strict=True)], batch_first=True)
    return x, torch.tensor([b - a for a, b in zip(starts, ends, strict=True)])


def padded_labels(store: FrameStore, utt_ids: list[int], labels: torch.Tensor) -> torch.Tensor:
    parts = [labels[int(store.offsets[u]) : int(store.offsets[u + 1])] for u in utt_ids]
    return nn.utils.rnn.pad_sequence(parts, batch_first=True, padding_value=IGNORE)


def ctc_targets(store: FrameStore, utt_ids: list[int]) -> list[list[int]]:
    """The canonical phones of each utterance (the PER references, no silence) as output indices."""
    return [[PHONE_INDEX[p] for word in store.utterances[u].words for p in word] for u in utt_ids]


def sequence_logits(model: nn.Module, store: FrameStore, utt_ids: list[int], batch: int = 32) -> list[torch.Tensor]:
    """(T_u, outputs) float32 logits per utterance, in ``utt_ids`` order, on the store's device."""
    out: list[torch.Tensor] = []
    for i in range(0, len(utt_ids), batch):
        ids = utt_ids[i : i + batch]
        x, lengths = padded(store, ids)
        logits = model(x, lengths).float()
        out += [logits[j, : int(n)] for j, n in enumerate(lengths)]
    return out


def sequence_loss(
    model: nn.Module, store: FrameStore, utt_ids: list[int], objective: str, labels: torch.Tensor | None
) -> torch.Tensor:
    """Mean per-frame cross-entropy on the frame targets (``labels``), or CTC on the canonical phones (``ctc``,
    averaged over target phones as PyTorch's 'mean' reduction does)."""
    x, lengths = padded(store, utt_ids)
    logits = model(x, lengths).float()
    if objective == "labels":
        if labels is None:
            raise ValueError("training on labels needs labels")
        target = padded_labels(store, utt_ids, labels)
        return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE)
    if objective == "ctc":
        phones = ctc_targets(store, utt_ids)
        targets = torch.tensor([p for seq in phones for p in seq], dtype=torch.long, device=logits.device)
        target_lengths = torch.tensor([len(seq) for seq in phones], dtype=torch.long)
        log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)  # (T, B, C)
        # zero_infinity: an utterance with more phones than frames (a clipped recording) adds nothing, not inf
        return F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=BLANK, zero_infinity=True)
    raise ValueError(f"a sequence model trains on 'labels' or 'ctc', not {objective!r} (mimics are frame models)")
