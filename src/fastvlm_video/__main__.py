"""``python -m fastvlm_video`` (and ``torchrun -m fastvlm_video``): the command line."""

import sys

from .cli import main

sys.exit(main())
