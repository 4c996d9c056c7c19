import numpy as np
import pytest
import torch

from training.ml.config import FeatureConfig
from training.ml.features import N_FEATURES, FeatureExtractor, Normaliser, mel_filterbank, splice


def _signal(seconds: float = 1.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    chirp = np.sin(2 * np.pi * (200 + 1500 * t) * t)
    return (0.3 * chirp + 0.05 * rng.normal(size=len(t))).astype(np.float32)


def test_filterbank_and_mel_energies_are_librosas():
    # One test, not two: librosa's first call compiles its numba functions (about 15 CPU-seconds in a fresh
    # environment), once per process that calls it.
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(16000, 512, 40, 20.0, 8000.0)
    theirs = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=20.0, fmax=8000.0, htk=True, norm=None)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)

    # The mel energies of a signal, with the same filterbank:
    config = FeatureConfig(preemphasis=0.0, remove_dc=False, window="hann")
    extractor = FeatureExtractor(config)
    y = _signal()
    ours = (extractor.power_spectrum(torch.from_numpy(y)[None])[0] @ extractor.fbank).double().numpy()
    # librosa centres a 400-sample window in each 512-sample frame: shift by 56 samples to frame alike.
    padded = np.concatenate([np.zeros(56, np.float32), y])
    spec = np.abs(librosa.stft(padded, n_fft=512, hop_length=160, win_length=400, window="hann", center=False)) ** 2
    theirs = (librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=20, fmax=8000, htk=True, norm=None) @ spec).T
    n = min(len(ours), len(theirs))
    assert n == len(ours)
    np.testing.assert_allclose(np.log(ours[:n]), np.log(theirs[:n]), atol=1e-3)


def test_shapes_batching_and_splicing():
    extractor = FeatureExtractor()
    a, b = _signal(1.3, 1), _signal(0.7, 2)
    batch = torch.zeros(2, len(a))
    batch[0] = torch.from_numpy(a)
    batch[1, : len(b)] = torch.from_numpy(b)
    feats = extractor(batch, torch.tensor([len(a), len(b)]))
    single = extractor(torch.from_numpy(b)[None])[0]
    assert feats.shape == (2, (len(a) - 400) // 160 + 1, N_FEATURES)
    assert torch.allclose(feats[1, : len(single)], single, atol=1e-3)
    normed = Normaliser.fit(single)(single)
    assert torch.allclose(normed.mean(0), torch.zeros(N_FEATURES), atol=1e-4)
    spliced = splice(normed, 7)
    assert spliced.shape == (len(single), 1845)
    assert torch.equal(spliced[0, :N_FEATURES], normed[0])  # left edge replicated
    assert torch.equal(spliced[10, 7 * N_FEATURES : 8 * N_FEATURES], normed[10])


@pytest.mark.parametrize(
    "config",
    [FeatureConfig(), FeatureConfig(window="povey"), FeatureConfig(preemphasis=0.0, remove_dc=False, window="hann")],
)
def test_the_fft_path_computes_the_features_of_the_convolution_the_onnx_graph_holds(config):
    """Training extracts features with an FFT, the exported graph with the DFT as a convolution: the same
    numbers up to float32 rounding, for every framing option (DC removal, pre-emphasis, window)."""
    extractor = FeatureExtractor(config)
    a, b = _signal(1.3, 3), _signal(0.45, 4)
    batch = torch.zeros(2, len(a))
    batch[0], batch[1, : len(b)] = torch.from_numpy(a), torch.from_numpy(b)

    fft = extractor.static_fft(batch)
    conv = torch.cat([extractor.log_mel(batch), extractor.log_energy(batch)[..., None]], dim=-1)

    assert fft.shape == conv.shape == (2, (len(a) - 400) // 160 + 1, config.n_mels + 1)
    torch.testing.assert_close(fft, conv, atol=2e-3, rtol=1e-4)
    assert float((fft - conv).abs().mean()) < 1e-4
    full = extractor(batch, torch.tensor([len(a), len(b)]))
    torch.testing.assert_close(full[..., : config.n_mels + 1], fft, atol=0, rtol=0)  # forward takes the FFT path


def test_a_corpus_gets_the_same_features_whatever_threads_the_process_has():
    """The store every run of a config shares must be the same bytes on any machine. A clip of 257 frames ends in a
    one-frame block, whose mel projection (a matrix-vector product) rounded differently on two threads than on
    one for about half of such clips: with the features computed on one thread, no clip differs."""
    from training.ml.data import compute_features

    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(256 * 160 + 400)).astype(np.float32) for _ in range(10)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = compute_features(waves, FeatureConfig())
        assert torch.get_num_threads() == 2  # the process keeps its own count
        torch.set_num_threads(1)
        one = compute_features(waves, FeatureConfig())
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
