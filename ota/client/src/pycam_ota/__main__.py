import sys

from pycam_ota.cli import main

sys.exit(main())
