"""Allow ``python -m sologm``."""

import sys

from sologm.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
