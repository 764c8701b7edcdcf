"""``python -m langchain_afarensis_vision.cli``."""

import sys

from langchain_afarensis_vision.cli._main import main

sys.exit(main())
