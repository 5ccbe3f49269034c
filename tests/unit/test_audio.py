"""Speech parts: audio reading and features, manifests, SpecAugment, the subsampler, CTC loss
and CTC decoding."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

soundfile = pytest.importorskip("soundfile")
pytest.importorskip("kaldi_native_fbank")

from seq2seqkit.data.audio import AudioFeaturizer, Waveform, read_audio  # noqa: E402
from seq2seqkit.data.batching import collate  # noqa: E402
from seq2seqkit.data.readers import ReadReport  # noqa: E402
from seq2seqkit.decoding.ctc import CTCPrefixScorer, collapse, ctc_rescore  # noqa: E402
from seq2seqkit.decoding.search import Hypothesis  # noqa: E402
from seq2seqkit.errors import DataError, ModelFileError  # noqa: E402
from seq2seqkit.model.frontends import Conv2dSubsampling, FrameStacking, SpecAugment  # noqa: E402
from seq2seqkit.model.seq2seq import ModelOutput  # noqa: E402
from seq2seqkit.tasks.asr import manifest_pairs  # noqa: E402
from seq2seqkit.training.loss import WithCTCLoss  # noqa: E402


def tone(seconds: float, hz: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write(path: Path, samples: np.ndarray, rate: int = 16000, **kwargs: object) -> Path:
    soundfile.write(str(path), samples, rate, **kwargs)
    return path


def test_reading_resamples_and_takes_the_first_channel(tmp_path):
    stereo = np.stack([tone(0.5, 440, 8000), np.zeros(4000, np.float32)], axis=1)
    samples = read_audio(write(tmp_path / "a.flac", stereo, 8000), 16000)
    assert samples.dtype == np.float32 and abs(len(samples) - 8000) <= 2
    assert np.abs(samples).max() > 0.2  # the tone's channel, not the silent one
    assert len(read_audio(Waveform(tone(1.0, 440, 22050), 22050), 16000)) == 16000


def test_log_mel_frames_every_10_ms_with_80_bins(tmp_path):
    featurizer = AudioFeaturizer(normalization="none")
    encoded = featurizer.encode(write(tmp_path / "a.wav", tone(1.0, 440)))
    assert tuple(encoded.features.shape) == (1 + (16000 - 400) // 160, 80)  # Kaldi's snip_edges framing
    assert encoded.labels[:2] == ["0.00s", "0.01s"]
    higher = featurizer.encode(write(tmp_path / "b.wav", tone(1.0, 2000))).features
    assert higher.mean(0).argmax() > encoded.features.mean(0).argmax() + 10  # a higher tone, a higher bin


def test_global_statistics_normalise_and_survive_a_round_trip(tmp_path):
    paths = [write(tmp_path / f"{hz}.wav", tone(0.6, hz)) for hz in (300, 900, 2500)]
    featurizer = AudioFeaturizer()
    featurizer.fit(paths)
    frames = torch.cat([featurizer.encode(p).features for p in paths])
    assert frames.mean(0).abs().max() < 1e-3 and (frames.std(0) - 1).abs().max() < 0.05
    for name, data in featurizer.files("src").items():
        (tmp_path / name).write_bytes(data)
    loaded = AudioFeaturizer().load_statistics(tmp_path, "src")
    assert torch.equal(loaded.encode(paths[0]).features, featurizer.encode(paths[0]).features)
    (tmp_path / "src_cmvn.json").write_text(json.dumps({"mean": [0.0], "std": [1.0]}))
    with pytest.raises(ModelFileError, match="src_cmvn.json: expected 80 means"):
        AudioFeaturizer().load_statistics(tmp_path, "src")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.wav", "no such audio file"),
        (lambda d: (d / "text.wav").write_text("not audio") and d / "text.wav", "not a readable audio file"),
        (lambda d: write(d / "empty.wav", np.zeros(0, np.float32)), "holds no samples"),
        (lambda d: write(d / "short.wav", tone(0.01, 440)), "shorter than one 25 ms frame"),
    ],
)
def test_bad_audio_is_a_one_line_error_naming_the_file(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(DataError, match=message) as caught:
        AudioFeaturizer(normalization="utterance").encode(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_manifests_tsv_and_jsonl_with_relative_paths(tmp_path):
    (tmp_path / "wav").mkdir()
    write(tmp_path / "wav" / "a.wav", tone(0.3, 440))
    write(tmp_path / "wav" / "b.flac", tone(0.3, 880))
    (tmp_path / "train.tsv").write_text("wav/a.wav\tHELLO\nwav/b.flac\tWORLD\n")
    records = [{"audio_filepath": "wav/a.wav", "text": "HELLO", "duration": 0.3}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    tsv = manifest_pairs(tmp_path / "train.tsv")
    assert [(Path(p.src).name, p.tgt) for p in tsv] == [("a.wav", "HELLO"), ("b.flac", "WORLD")]
    assert Path(tsv[0].src).is_file() and tsv[0].origin.endswith("train.tsv:1")
    assert [p.tgt for p in manifest_pairs(tmp_path / "train.jsonl")] == ["HELLO"]


def test_a_bad_manifest_line_is_named_or_skipped_and_counted(tmp_path):
    write(tmp_path / "a.wav", tone(0.3, 440))
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    (tmp_path / "m.tsv").write_text("a.wav\tYES\nmissing.wav\tNO\nbad.wav\tNO\n")
    with pytest.raises(DataError, match=r"m\.tsv:2: .*missing\.wav: no such audio file"):
        manifest_pairs(tmp_path / "m.tsv")
    report = ReadReport()
    assert len(manifest_pairs(tmp_path / "m.tsv", skip_bad=True, report=report)) == 1
    assert report.total_skipped == 2


def test_spec_augment_masks_bands_in_training_only():
    torch.manual_seed(0)
    frames = torch.ones(4, 200, 80)
    masked = SpecAugment(2, 20, 2, 30, 0.2)(frames)
    zero_bins = (masked == 0).all(dim=1).sum(-1)  # per utterance: bins masked at every frame
    zero_frames = (masked == 0).all(dim=2).sum(-1)
    assert (zero_bins <= 40).all() and (zero_frames <= 60).all() and zero_bins.sum() + zero_frames.sum() > 0
    subsampler = Conv2dSubsampling(80, 4, 16, SpecAugment(2, 20, 2, 30, 0.2)).eval()
    assert torch.equal(subsampler(frames), subsampler(frames))  # no masks in evaluation


def test_subsampler_output_lengths_match_its_convolutions():
    subsampler = Conv2dSubsampling(80, 4, 16)
    for frames in (7, 8, 99, 300):
        out = subsampler(torch.zeros(1, frames, 80))
        assert out.shape[1] == int(subsampler.output_lengths(torch.tensor([frames]))[0])


def test_frame_stacking_puts_k_frames_side_by_side_and_pads_the_last_group():
    stacking = FrameStacking(2, 3)
    frames = torch.arange(14.0).view(1, 7, 2)  # frame t holds (2t, 2t + 1)
    out = stacking(frames)
    assert out.shape == (1, 3, 6) and stacking.output_size == 6
    assert out[0, 1].tolist() == [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]  # frames 3, 4, 5
    assert out[0, 2].tolist() == [12.0, 13.0, 0.0, 0.0, 0.0, 0.0]
    assert stacking.output_lengths(torch.tensor([7, 6, 1])).tolist() == [3, 2, 1]


def test_ctc_loss_is_the_weighted_sum_over_target_tokens():
    torch.manual_seed(0)
    batch = collate([torch.zeros(8, 2), torch.zeros(6, 2)], [[5, 6, 5], [7]], [0, 1])
    logits = torch.randn(2, 6, 9)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    output = ModelOutput(torch.zeros(2, 4, 3), None, None, logits, mask)

    class Half:
        def __call__(self, output, batch, label_smoothing=0.0):
            return torch.tensor(2.0)

        nll = __call__

    expected = F.ctc_loss(
        logits.log_softmax(-1).transpose(0, 1),
        torch.tensor([[5, 6, 5], [7, 0, 0]]),
        torch.tensor([6, 4]),
        torch.tensor([3, 1]),
        reduction="sum",
    ) / (4 + 2)  # target tokens with <eos>, as the decoder's loss counts them
    joint = WithCTCLoss(Half(), 0.25, blank=0)
    assert torch.allclose(joint(output, batch), 0.25 * expected + 0.75 * 2.0)
    assert torch.allclose(WithCTCLoss(Half(), 1.0, blank=0)(output, batch), expected)


def test_best_path_merges_repeats_then_drops_blanks():
    assert collapse([0, 5, 5, 0, 5, 6, 6, 0]) == [5, 5, 6]
    assert collapse([0, 0]) == []


def test_rescoring_prefers_what_ctc_finds_likely():
    class Head:  # a model whose CTC head puts label 5 at every position
        def encoder(self, src, lengths):
            class Enc:
                memory = torch.zeros(1, 4, 1)
                mask = torch.ones(1, 4, dtype=torch.bool)

            return Enc()

        def ctc_log_probs(self, enc):
            logits = torch.full((1, 4, 8), -10.0)
            logits[..., 5] = 10.0
            logits[..., 0] = 5.0
            return logits.log_softmax(-1)

    nbest = [[Hypothesis([6], -0.1, None), Hypothesis([5], -0.5, None)]]
    src, lengths = torch.zeros(1, 4, 1), torch.tensor([4])
    assert ctc_rescore(Head(), src, lengths, nbest, 0.0)[0][0].token_ids == [6]  # type: ignore[arg-type]
    best = ctc_rescore(Head(), src, lengths, nbest, 0.5)[0]  # type: ignore[arg-type]
    assert best[0].token_ids == [5] and best[0].score > best[1].score


def _brute_force_ctc(log_probs: torch.Tensor, labels: list[int]) -> tuple[dict, dict]:
    """Every path over ``labels`` of one source's (T, V) log-probabilities: the probability of each
    output (collapsed path) and of each prefix (all outputs that begin with it)."""
    import itertools

    exact: dict[tuple[int, ...], float] = {}
    prefix: dict[tuple[int, ...], float] = {}
    for path in itertools.product(labels, repeat=log_probs.size(0)):
        p = float(log_probs[range(len(path)), list(path)].sum().exp())
        output = tuple(collapse(list(path)))
        exact[output] = exact.get(output, 0.0) + p
        for end in range(len(output) + 1):
            prefix[output[:end]] = prefix.get(output[:end], 0.0) + p
    return exact, prefix


def test_ctc_prefix_scores_equal_sums_over_all_paths():
    """Two sources of 5 and 3 positions (the second padded), two hypotheses each: every step's
    joint score with weight 1 is log p(prefix h) - log p(prefix g), and <eos> gives log p(g)."""
    torch.manual_seed(0)
    labels = [0, 4, 5, 6]  # blank and three real tokens; <unk>, <sos>, <eos> have no probability
    logits = torch.full((2, 5, 7), float("-inf"))
    logits[:, :, labels] = torch.randn(2, 5, len(labels))
    log_probs = logits.log_softmax(-1)
    lengths = torch.tensor([5, 3])
    truth = [_brute_force_ctc(log_probs[b, : lengths[b]], labels) for b in range(2)]
    scorer = CTCPrefixScorer(log_probs, lengths, rows_per_source=2, weight=1.0, candidates=7)
    outputs = [(5, 5, 4), (6, 4, 4), (4, 6, 5), (5, 5, 6)]  # one per row; rows 0-1 source 0
    for step in range(3):
        scores = scorer.joint(torch.zeros(4, 7).log_softmax(-1))
        for row, output in enumerate(outputs):
            exact, prefix = truth[row // 2]
            g, h = output[:step], output[: step + 1]
            expected = math.log(prefix.get(h, 0.0) or 1e-300) - math.log(prefix[g])
            if prefix.get(h, 0.0) > 0:
                assert scores[row, h[-1]] == pytest.approx(expected, abs=1e-4), (row, h)
            else:  # three tokens do not fit in three positions: 5 5 needs a blank between
                assert scores[row, h[-1]] == float("-inf"), (row, h)
            if exact.get(g, 0.0) > 0:
                assert scores[row, 3] == pytest.approx(math.log(exact[g]) - math.log(prefix[g]), abs=1e-4)
        if step < 2:
            scorer.advance(torch.arange(4), torch.tensor([o[step] for o in outputs]))
