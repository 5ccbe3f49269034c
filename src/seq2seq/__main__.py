"""``python -m seq2seq``: the same command line as the ``seq2seq`` script."""

import sys

from seq2seq.cli import main

sys.exit(main())
