"""``python -m seq2seqkit``: the same command line as the ``seq2seqkit`` script."""

import sys

from seq2seqkit.cli import main

sys.exit(main())
