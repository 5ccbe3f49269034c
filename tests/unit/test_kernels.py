"""Each CPU kernel computes what the plain path computes: the fused output layer + cross-entropy
what F.cross_entropy computes, the input-feeding LSTM what autograd through the step loop
computes, and a whole model built with the kernels the loss and gradients of one built without."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seq2seqkit.build import build_loss, build_model
from seq2seqkit.config import DecoderConfig, EncoderConfig, ModelConfig
from seq2seqkit.data.batching import collate
from seq2seqkit.device import lstm_autocasts_to_bfloat16
from seq2seqkit.kernels import FAST, PLAIN, activations
from seq2seqkit.kernels import output_loss as loss_module
from seq2seqkit.kernels.dropout import dropout_mask
from seq2seqkit.kernels.input_feeding import _InputFeedingLSTM
from seq2seqkit.kernels.output_loss import output_cross_entropy

VOCAB = 11
EMBEDDING = 8
ENCODER_HIDDEN = 4
DECODER_HIDDEN = 8


def padded_batch():
    """Three examples of different source and target lengths, so both sides have padding."""
    return collate([[4, 5, 6, 7, 8], [9, 10], [5, 5, 6]], [[6, 7], [4, 5, 6, 7, 8, 9], [10, 4, 5]], [0, 1, 2])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("slice_logits", [2**23, 200])  # one slice, or 4 tokens of 50 at a time
def test_equals_cross_entropy_on_full_logits(
    label_smoothing: float, slice_logits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loss_module, "SLICE_LOGITS", slice_logits)
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 50)
    features = torch.randn(37, 16, requires_grad=True)
    gold = torch.randint(0, 50, (37,))
    results = []
    for ours in (False, True):
        layer.zero_grad()
        features.grad = None
        if ours:
            loss = output_cross_entropy(features, layer, gold, label_smoothing)
        else:
            loss = F.cross_entropy(layer(features), gold, label_smoothing=label_smoothing)
        (3.0 * loss).backward()  # a non-unit upstream gradient
        results.append([loss.detach(), features.grad, layer.weight.grad, layer.bias.grad])
    for ours, reference in zip(*results, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_without_gradients_gives_the_same_loss() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 30)
    features, gold = torch.randn(12, 8), torch.randint(0, 30, (12,))
    with torch.inference_mode():
        ours = output_cross_entropy(features, layer, gold, 0.1)
        reference = F.cross_entropy(layer(features), gold, label_smoothing=0.1)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_under_bfloat16_autocast_matches_float32_closely() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(32, 100)
    features = torch.randn(64, 32, requires_grad=True)
    gold = torch.randint(0, 100, (64,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = output_cross_entropy(features, layer, gold, 0.1)
    low.backward()
    assert low.dtype == torch.float32 and features.grad is not None and features.grad.dtype == torch.float32
    low_grads = [features.grad, layer.weight.grad, layer.bias.grad]
    features.grad = None
    layer.zero_grad()
    reference = F.cross_entropy(layer(features), gold, label_smoothing=0.1)
    reference.backward()
    torch.testing.assert_close(low, reference, rtol=2e-2, atol=2e-2)
    for low_grad, grad in zip(low_grads, [features.grad, layer.weight.grad, layer.bias.grad], strict=True):
        assert low_grad is not None and grad is not None and low_grad.dtype == grad.dtype
        assert (low_grad - grad).norm() < 0.02 * grad.norm()  # bfloat16 keeps ~3 significant digits


def _input_feeding_runs(
    attention: str, layers: int, dropout: float = 0.0, bfloat16: bool = False
) -> list[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]]:
    """(features, attention weights, parameter gradients) from the hand-written input-feeding
    LSTM kernel and from autograd through the step loop, in that order."""
    torch.manual_seed(0)
    config = ModelConfig(
        embedding_size=EMBEDDING,
        dropout=dropout,
        encoder=EncoderConfig(hidden_size=ENCODER_HIDDEN, num_layers=2),
        decoder=DecoderConfig(hidden_size=DECODER_HIDDEN, num_layers=layers, attention=attention,
                              input_feeding=True),
    )  # fmt: skip
    model = build_model(config, VOCAB, VOCAB).train()
    assert model.decoder.feeds_by_hand
    batch = padded_batch()
    results = []
    for run_steps in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            enc = model.encode(batch.src, batch.src_lengths)
            state = model.init_state(enc)
            decoder = model.decoder.forward_steps if run_steps else model.decoder
            features, attention_weights = decoder(batch.tgt_in, enc, state)
        (features.float() * torch.linspace(-1, 1, features.numel()).view_as(features)).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((features.detach().float(), attention_weights.float(), grads))
    return results


@pytest.mark.parametrize("attention", ["dot", "general"])
@pytest.mark.parametrize("layers", [1, 3])
def test_hand_written_input_feeding_equals_autograd_through_steps(attention: str, layers: int) -> None:
    """The input-feeding LSTM's own backward pass gives the features, attention and gradients
    that autograd gives through the step loop."""
    (fast, fast_attention, fast_grads), (slow, slow_attention, slow_grads) = _input_feeding_runs(
        attention, layers
    )
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fast_attention, slow_attention, atol=1e-6, rtol=1e-5)
    assert fast_grads.keys() == slow_grads.keys()
    for name, grad in slow_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_hand_written_input_feeding_drops_where_the_step_loop_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the same masks (a fixed pattern over the last dimension stands in for random ones),
    dropout between layers and on the attentional vectors lands where ``step`` puts it."""

    def fixed_mask(
        shape: tuple[int, ...], p: float, dtype: torch.dtype = torch.float32, device=None
    ) -> torch.Tensor:
        keep = (torch.arange(shape[-1]) % 3 != 0).to(dtype) * 1.5
        return keep.expand(shape).clone()

    for module in ("dropout", "input_feeding"):
        monkeypatch.setattr(f"seq2seqkit.kernels.{module}.dropout_mask", fixed_mask)
    (fast, _, fast_grads), (slow, _, slow_grads) = _input_feeding_runs("general", 2, dropout=0.3)
    assert (fast == 0).float().mean() > 0.3  # the pattern drops a third of the features
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
    for name, grad in slow_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


@pytest.mark.skipif(not lstm_autocasts_to_bfloat16(), reason="this CPU's LSTM has no bfloat16 autocast")
def test_hand_written_input_feeding_under_bfloat16_autocast_stays_close_to_the_step_loop() -> None:
    """Both paths round their matmuls to bfloat16 (~3 significant digits), in different places."""
    (fast, fast_attention, fast_grads), (slow, slow_attention, slow_grads) = _input_feeding_runs(
        "general", 2, bfloat16=True
    )
    assert (fast - slow).norm() < 0.02 * slow.norm()
    assert (fast_attention - slow_attention).abs().max() < 0.02
    for name, grad in slow_grads.items():
        assert (fast_grads[name] - grad).norm() < 0.1 * grad.norm(), name  # measured: at most 0.036


def test_hand_written_input_feeding_backward_passes_gradcheck_with_dropout() -> None:
    """Finite differences in float64, with dropout masks between layers and on the features."""
    torch.manual_seed(0)
    batch, steps, src_len, hidden, memory_size, feature_size, layers = 2, 3, 4, 3, 4, 3, 2

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    score_bias = torch.zeros(batch, src_len, dtype=torch.float64)
    score_bias[1, 3:] = float("-inf")
    state = (rand(layers, batch, hidden), rand(layers, batch, hidden))
    inputs = (
        torch.float64, rand(batch, steps, 4 * hidden), *state,
        rand(batch, src_len, hidden), rand(batch, src_len, memory_size), score_bias,
        rand(feature_size, hidden + memory_size),
        dropout_mask((steps, batch, feature_size), 0.3, torch.float64),
        dropout_mask((layers - 1, steps, batch, hidden), 0.3, torch.float64),
        rand(4 * hidden, feature_size + hidden), rand(4 * hidden, 2 * hidden), rand(4 * hidden),
    )  # fmt: skip
    assert torch.autograd.gradcheck(lambda *x: _InputFeedingLSTM.apply(*x)[0], inputs)


def test_sigmoid_tanh_equals_torch_tanh() -> None:
    x = torch.linspace(-8, 8, 1001)
    torch.testing.assert_close(activations.tanh(x), torch.tanh(x), atol=1e-6, rtol=0)
    low = activations.tanh(x.bfloat16())
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), torch.tanh(x.bfloat16().float()), atol=8e-3, rtol=0)


@pytest.mark.parametrize(
    ("rnn", "attention", "input_feeding", "layers"),
    [
        ("lstm", "general", True, 2),
        ("lstm", "dot", False, 1),
        ("gru", "bahdanau", False, 2),
        ("lstm", "concat", True, 1),
    ],
)
def test_a_model_with_kernels_gives_the_loss_and_gradients_of_one_without(
    rnn: str, attention: str, input_feeding: bool, layers: int
) -> None:
    """The same weights, built once with the kernels (FAST) and once without (PLAIN): the training
    loss and every parameter's gradient agree, label smoothing included."""
    config = ModelConfig(
        rnn_type=rnn,
        embedding_size=EMBEDDING,
        dropout=0.0,
        encoder=EncoderConfig(hidden_size=ENCODER_HIDDEN, num_layers=2),
        decoder=DecoderConfig(hidden_size=DECODER_HIDDEN, num_layers=layers, attention=attention,
                              input_feeding=input_feeding),
    )  # fmt: skip
    batch = padded_batch()
    results = []
    for ops in (FAST, PLAIN):
        torch.manual_seed(0)
        model = build_model(config, VOCAB, VOCAB, ops).train()
        loss = build_loss(model, ops)(model(batch.src, batch.src_lengths, batch.tgt_in), batch, 0.1)
        loss.backward()
        results.append(
            (loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None})
        )
    (fast_loss, fast_grads), (plain_loss, plain_grads) = results
    torch.testing.assert_close(fast_loss, plain_loss, atol=1e-6, rtol=1e-5)
    assert fast_grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_plain_ops_use_no_kernel() -> None:
    config = ModelConfig(decoder=DecoderConfig(input_feeding=True))
    assert build_model(config, VOCAB, VOCAB, FAST).decoder.feeds_by_hand
    assert not build_model(config, VOCAB, VOCAB, PLAIN).decoder.feeds_by_hand
