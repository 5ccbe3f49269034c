"""The errors a user can fix: each carries one line saying what is wrong and where.

The command line prints these as a single line and exits non-zero; anything else is a bug.
"""


class Seq2SeqError(Exception):
    """Base class of the errors the toolkit reports to the user."""


class ConfigError(Seq2SeqError):
    """A config file, key or value that is not allowed."""


class DataError(Seq2SeqError):
    """A data file that cannot be read as asked (its message names the file and line)."""


class ModelFileError(Seq2SeqError):
    """A model directory or checkpoint that is missing, damaged or not ours."""
