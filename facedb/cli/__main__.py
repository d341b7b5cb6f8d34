"""`python -m facedb.cli`: the same as the `facedb` command."""

import sys

from facedb.cli import main

sys.exit(main())
