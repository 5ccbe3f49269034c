"""Speech recognition end to end on audio the test makes: tone "letters" (A, B, C at three pitches)
spoken in sequences; a small listener-speller with a CTC head learns them in seconds, through the
CLI as a user runs it, and the trained model transcribes files, lists and arrays alike."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

soundfile = pytest.importorskip("soundfile")
pytest.importorskip("kaldi_native_fbank")

import seq2seqkit  # noqa: E402
from seq2seqkit.cli import main  # noqa: E402

RATE = 8000  # the model reads 16 kHz: every file is resampled
PITCH = {"A": 400.0, "B": 900.0, "C": 1800.0}


def utterance(letters: list[str], rng: random.Random) -> np.ndarray:
    """Each letter a 0.12 s tone, with 0.05 s of quiet noise around it."""
    parts = []
    for letter in letters:
        t = np.arange(int(0.12 * RATE)) / RATE
        parts.append(0.01 * np.random.default_rng(rng.randrange(10**6)).standard_normal(int(0.05 * RATE)))
        parts.append(0.4 * np.sin(2 * np.pi * PITCH[letter] * t + rng.random()))
    parts.append(np.zeros(int(0.05 * RATE)))
    return np.concatenate(parts).astype(np.float32)


def make_split(directory: Path, name: str, count: int, rng: random.Random) -> Path:
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        letters = [rng.choice("ABC") for _ in range(rng.randint(1, 4))]
        soundfile.write(str(directory / "wav" / f"{name}{i}.wav"), utterance(letters, rng), RATE)
        lines.append(f"wav/{name}{i}.wav\t{' '.join(letters)}\n")
    (directory / f"{name}.tsv").write_text("".join(lines))
    return directory / f"{name}.tsv"


CONFIG = """
task: asr
data: {{format: manifest, train: {train}, valid: {valid}}}
model:
  embedding_size: 32
  frontend_channels: 8
  dropout: 0.0
  ctc_weight: 0.5
  encoder: {{hidden_size: 48, num_layers: 1}}
  decoder: {{hidden_size: 64, num_layers: 1, attention: general}}
# float32 and one validation at the end (the final weights kept): a bfloat16 machine's model at
# step 80 already scored WER 0 with joint decoding but attention alone got 11 of 20 right
training: {{batch_tokens: 2000, lr: 0.005, max_steps: 240, validate_every: 240, log_every: 40, seed: 3,
           precision: float32}}
decoding: {{beam_size: 3, method: joint}}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    rng = random.Random(0)
    train, valid = make_split(root, "train", 160, rng), make_split(root, "valid", 20, rng)
    config = root / "asr.yaml"
    config.write_text(CONFIG.format(train=train, valid=valid))
    assert main(["train", str(config), "--output", str(root / "model")]) == 0
    return root


@pytest.mark.slow
def test_listener_speller_learns_to_transcribe_tones(trained):
    scores = (trained / "model" / "validations.jsonl").read_text().splitlines()
    assert '"WER"' in scores[-1]
    pipeline = seq2seqkit.load(trained / "model")
    paths = [str(trained / "wav" / f"valid{i}.wav") for i in range(20)]
    references = [line.split("\t")[1].strip() for line in (trained / "valid.tsv").read_text().splitlines()]
    for method in ("attention", "ctc_greedy", "joint", "rescore"):
        pipeline.set_decoding(method=method)
        outputs = [o.text for o in pipeline.generate(paths)]
        right = sum(o == r for o, r in zip(outputs, references, strict=True))
        assert right >= 16, (method, list(zip(outputs, references, strict=True)))


@pytest.mark.slow
def test_the_model_directory_is_self_contained_and_holds_no_pickle(trained):
    files = {p.name for p in (trained / "model").iterdir()}
    assert {"config.yaml", "model.safetensors", "src_cmvn.json", "tgt_vocab.txt"} <= files
    assert not [p for p in (trained / "model").rglob("*") if p.suffix in (".pt", ".pkl", ".pth", ".bin")]


@pytest.mark.slow
def test_transcribe_generate_and_arrays_agree(trained, tmp_path, capsys):
    model, wav = trained / "model", trained / "wav"
    paths = [str(wav / "valid0.wav"), str(wav / "valid1.wav")]
    assert main(["transcribe", str(model), *paths, "--attention-dir", str(tmp_path / "att")]) == 0
    transcribed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [path for path, _ in transcribed] == paths
    assert (tmp_path / "att" / "00001.png").stat().st_size > 5000
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths) + "\n")
    assert main(["generate", str(model), "--input", str(listing)]) == 0
    assert capsys.readouterr().out.splitlines() == [text for _, text in transcribed]
    samples, rate = soundfile.read(paths[0], dtype="float32")
    from_array = seq2seqkit.load(model).generate([samples], sample_rate=rate)[0].text
    assert from_array == transcribed[0][1]


@pytest.mark.slow
def test_ctc_weight_from_the_command_line(trained, capsys):
    model, path = trained / "model", str(trained / "wav" / "valid0.wav")
    pipeline = seq2seqkit.load(model)
    pipeline.set_decoding(method="joint", ctc_weight=0.9)
    assert main(["transcribe", str(model), path, "--method", "joint", "--ctc-weight", "0.9"]) == 0
    assert capsys.readouterr().out == f"{path}\t{pipeline.generate([path])[0].text}\n"
    bad = subprocess.run(
        [sys.executable, "-m", "seq2seqkit", "transcribe", str(model), path, "--ctc-weight", "1.5"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "ctc_weight" in bad.stderr and "1.5" in bad.stderr


@pytest.mark.slow
def test_bad_audio_in_a_manifest_is_one_line_naming_the_line(trained, tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    manifest = tmp_path / "train.tsv"
    manifest.write_text(f"{trained / 'wav' / 'train0.wav'}\tA\nbroken.wav\tB\n")
    config = tmp_path / "bad.yaml"
    config.write_text(CONFIG.format(train=manifest, valid=manifest))
    result = subprocess.run(
        [sys.executable, "-m", "seq2seqkit", "train", str(config), "--output", str(tmp_path / "m")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    (message,) = result.stderr.strip().splitlines()
    assert message.startswith(
        f"seq2seqkit: error: {manifest}:2: {tmp_path / 'broken.wav'}: not a readable audio file ("
    )
    assert message.count(str(tmp_path / "broken.wav")) == 1
    assert message.endswith("(set data.skip_bad_lines: true to skip such lines)")
    transcribe = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seqkit",
            "transcribe",
            str(trained / "model"),
            str(tmp_path / "nope.wav"),
        ],
        capture_output=True,
        text=True,
    )
    assert transcribe.returncode == 1
    assert transcribe.stderr.strip() == f"seq2seqkit: error: {tmp_path / 'nope.wav'}: no such audio file"


@pytest.mark.slow
def test_the_server_transcribes_posted_audio_and_never_reads_its_own_files(trained):
    """POST /v1/transcribe takes the audio file's bytes and gives the pipeline's transcripts; the
    JSON route refuses a speech model (its inputs would be paths read on the server's machine)."""
    from fastapi.testclient import TestClient

    from seq2seqkit.serve.app import create_app

    pipeline = seq2seqkit.load(trained / "model")
    path = trained / "wav" / "valid3.wav"
    expected = pipeline.generate([str(path)], beam=3, nbest=2)[0].hypotheses
    audio = path.read_bytes()
    with TestClient(create_app({"asr": pipeline}), raise_server_exceptions=False) as client:
        info = client.get("/v1/models").json()["models"][0]
        assert (info["name"], info["source"], info["source_vocab"]) == ("asr", "audio", None)
        response = client.post("/v1/transcribe?beam=3&nbest=2", content=audio)
        assert response.status_code == 200, response.text
        found = response.json()["hypotheses"]
        assert [h["text"] for h in found] == [h.text for h in expected]
        assert found[0]["score"] == pytest.approx(expected[0].score, abs=1e-4)
        bad = {
            "/v1/transcribe": (b"RIFF....WAVEfmt nonsense", "request body is not a readable audio file ("),
            "/v1/transcribe?beam=0": (path.read_bytes(), "beam: Input should be greater than or equal to 1"),
            "/v1/transcribe?volume=11": (
                path.read_bytes(),
                "volume: unknown field (fields: model, beam, nbest",
            ),
            "/v1/transcribe?model=nope": (path.read_bytes(), "no model named 'nope' (serving: asr)"),
        }
        for url, (body, message) in bad.items():
            response = client.post(url, content=body)
            assert response.status_code in (404, 422) and response.json()["error"].startswith(message), url
        response = client.post("/v1/generate", json={"inputs": ["/etc/passwd"]})
        assert response.status_code == 422
        assert (
            response.json()["error"]
            == "model 'asr' reads audio: POST the audio file's bytes to /v1/transcribe"
        )


@pytest.fixture(scope="module")
def language_model(trained):
    """A character LM of the training transcripts (the manifest read as TSV, the audio unread)."""
    config = trained / "lm.yaml"
    config.write_text(
        f"task: language_model\n"
        f"data: {{format: tsv, train: {trained / 'train.tsv'}, valid: {trained / 'valid.tsv'},"
        f" tgt_tokenizer: {{type: char}}}}\n"
        "model: {embedding_size: 16, dropout: 0.0, decoder: {hidden_size: 32, num_layers: 1}}\n"
        "training: {batch_tokens: 2000, lr: 0.01, max_steps: 40, validate_every: 40, precision: float32}\n"
    )
    assert main(["train", str(config), "--output", str(trained / "lm")]) == 0
    return trained / "lm"


@pytest.mark.slow
def test_a_character_lm_of_the_training_transcripts_fuses_into_joint_decoding(trained, language_model):
    """The AN4 use: a language model of the manifest's transcripts, fused into joint CTC/attention
    decoding; at weight 0 exactly the plain search."""
    pipeline = seq2seqkit.load(trained / "model")
    paths = [str(trained / "wav" / f"valid{i}.wav") for i in range(20)]
    references = [line.split("\t")[1].strip() for line in (trained / "valid.tsv").read_text().splitlines()]
    plain = pipeline.generate(paths)
    pipeline.set_decoding(lm=str(language_model), lm_weight=0.0)
    assert [(o.text, round(o.score, 4)) for o in pipeline.generate(paths)] == [
        (o.text, round(o.score, 4)) for o in plain
    ]
    pipeline.set_decoding(lm_weight=0.3)
    fused = [o.text for o in pipeline.generate(paths)]
    assert sum(o == r for o, r in zip(fused, references, strict=True)) >= 16


TRANSFORMER = """
model:
  architecture: transformer
  frontend: conv2d
  frontend_channels: 8
  ctc_weight: 0.5
  transformer: {encoder_layers: 2, decoder_layers: 1, d_model: 32, heads: 2, ff_size: 64, dropout: 0.0}
training: {batch_tokens: 2000, lr: 0.005, warmup_steps: 20, max_steps: 60, validate_every: 60, seed: 3,
           precision: float32}
"""


@pytest.fixture(scope="module")
def exports(trained, language_model):
    """ONNX exports: the listener-speller as it is and with the LM fused (through the CLI), and a
    small speech Transformer (trained briefly: its outputs need not be right, only reproducible)."""
    onnx = pytest.importorskip("seq2seqkit.export.onnx")
    model = trained / "model"
    fused = ["--lm", str(language_model), "--lm-weight", "0.3"]
    assert main(["export", str(model), "--output", str(trained / "onnx-lm"), *fused]) == 0
    config = trained / "transformer.yaml"
    task_and_data = CONFIG.format(train=trained / "train.tsv", valid=trained / "valid.tsv").split("model:")[0]
    config.write_text(task_and_data + TRANSFORMER + "decoding: {beam_size: 3, method: joint}\n")
    assert main(["train", str(config), "--output", str(trained / "transformer")]) == 0
    return {
        "rnn": onnx.export_onnx(model, trained / "onnx"),
        "rnn-lm": trained / "onnx-lm",
        "transformer": onnx.export_onnx(trained / "transformer", trained / "onnx-transformer"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rnn", "transformer"])
def test_onnx_export_transcribes_as_the_package_does(trained, exports, name):
    """Every decoding method the runtime has, greedy and beam: the same strings from the same audio."""
    from seq2seqkit.export import runtime

    pipeline = seq2seqkit.load(trained / ("model" if name == "rnn" else name))
    exported = runtime.OnnxModel(exports[name])
    paths = [str(trained / "wav" / f"valid{i}.wav") for i in range(20)]
    for method in ("attention", "ctc_greedy", "joint"):
        pipeline.set_decoding(method=method)
        exported.decoding["method"] = method
        for beam in (1, 3):
            expected = [o.text for o in pipeline.generate(paths, beam=beam)]
            assert [o.text for o in exported.generate(paths, beam=beam)] == expected, (method, beam)


@pytest.mark.slow
def test_onnx_export_with_a_fused_lm_and_its_runtime_command(trained, language_model, exports):
    pipeline = seq2seqkit.load(trained / "model")
    pipeline.set_decoding(lm=str(language_model), lm_weight=0.3)
    paths = [str(trained / "wav" / f"valid{i}.wav") for i in range(20)]
    expected = [o.text for o in pipeline.generate(paths)]
    script = [sys.executable, str(exports["rnn-lm"] / "runtime.py"), str(exports["rnn-lm"])]
    result = subprocess.run(script, input="\n".join(paths) + "\n", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    bad = subprocess.run(script, input=str(trained / "nope.wav") + "\n", capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"runtime.py: error: {trained / 'nope.wav'}: not a readable audio file (")
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_an_ensemble_decodes_jointly_with_the_mean_ctc_distribution(trained, exports):
    """Joint CTC/attention decoding of an ensemble: a model with itself transcribes as it does
    alone; models whose frontends keep different numbers of positions are a one-line error."""
    from seq2seqkit.errors import ConfigError

    paths = [str(trained / "wav" / f"valid{i}.wav") for i in range(10)]
    alone = seq2seqkit.load(trained / "model")
    twice = seq2seqkit.ensemble([alone, seq2seqkit.load(trained / "model")])
    assert twice.config.decoding.method == "joint"
    assert [o.text for o in twice.generate(paths)] == [o.text for o in alone.generate(paths)]
    mixed = seq2seqkit.ensemble([alone, seq2seqkit.load(trained / "transformer")])
    with pytest.raises(ConfigError, match="CTC heads must read as many encoder positions"):
        mixed.generate(paths)
    twice.set_decoding(method="ctc_greedy")
    with pytest.raises(ConfigError, match="ctc_greedy decodes one network, not an ensemble"):
        twice.generate(paths)
