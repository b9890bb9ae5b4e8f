import sys

from odp.cli import main

sys.exit(main())
