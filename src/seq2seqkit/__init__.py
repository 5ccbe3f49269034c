"""seq2seqkit: RNN encoder-decoder models that train, generate, evaluate and explain themselves.

import seq2seqkit
config = seq2seqkit.load_config("g2p", ["training.max_minutes=5"])
model_dir = seq2seqkit.train(config, "runs/g2p")
model = seq2seqkit.load(model_dir)
model.generate(["hello"], beam=5)[0].text
"""

from typing import Any

from seq2seqkit.config import Config
from seq2seqkit.errors import Seq2SeqError
from seq2seqkit.pipeline import Output, Pipeline, ensemble, load
from seq2seqkit.recipes import load_config
from seq2seqkit.version import __version__

__all__ = [
    "Config",
    "Output",
    "Pipeline",
    "Seq2SeqError",
    "__version__",
    "ensemble",
    "load",
    "load_config",
    "train",
]


def __getattr__(name: str) -> Any:
    """``seq2seqkit.train`` is imported on first use: loading a model should not load the trainer."""
    if name == "train":
        from seq2seqkit.workflow import train

        return train
    raise AttributeError(f"module 'seq2seqkit' has no attribute {name!r}")
