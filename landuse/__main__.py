import sys

from landuse.cli import main

sys.exit(main())
