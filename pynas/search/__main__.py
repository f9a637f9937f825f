import sys

from pynas.search.cli import main

sys.exit(main())
