"""seq2seq: RNN encoder-decoder models that train, generate, evaluate and explain themselves.

import seq2seq
config = seq2seq.load_config("configs/g2p.yaml", ["training.max_minutes=5"])
model_dir = seq2seq.train(config, "runs/g2p")
model = seq2seq.load(model_dir)
model.generate(["hello"], beam=5)[0].text
"""

from typing import Any

from seq2seq.config import Config, load_config
from seq2seq.errors import Seq2SeqError
from seq2seq.pipeline import Output, Pipeline, ensemble, load

__all__ = ["Config", "Output", "Pipeline", "Seq2SeqError", "ensemble", "load", "load_config", "train"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``seq2seq.train`` is imported on first use: loading a model should not load the trainer."""
    if name == "train":
        from seq2seq.workflow import train

        return train
    raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
