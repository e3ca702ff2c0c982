import sys

from hafm_core.cli import main

sys.exit(main())
