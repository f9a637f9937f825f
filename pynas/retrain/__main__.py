import sys

from pynas.retrain.cli import main

sys.exit(main())
