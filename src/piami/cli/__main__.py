import sys

from piami.cli import main

sys.exit(main())
