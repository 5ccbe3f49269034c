"""seq2seq: RNN encoder-decoder models that train, generate, evaluate and explain themselves.

import seq2seq
config = seq2seq.load_config("configs/g2p.yaml", ["training.max_minutes=5"])
model_dir = seq2seq.train(config, "runs/g2p")
model = seq2seq.load(model_dir)
model.generate(["hello"], beam=5)[0].text
"""

from seq2seq.config import Config, load_config
from seq2seq.errors import Seq2SeqError
from seq2seq.pipeline import Output, Pipeline, load
from seq2seq.training.trainer import train

__all__ = ["Config", "Output", "Pipeline", "Seq2SeqError", "load", "load_config", "train"]
__version__ = "0.1.0"
