"""The toolkit's version: the one place it is written (pyproject.toml and `seq2seqkit --version` read it)."""

__version__ = "0.1.0"
