import sys

from pynas.search.cli import main

if __name__ == "__main__":  # a spawned worker re-importing this module must not start a run
    sys.exit(main())
