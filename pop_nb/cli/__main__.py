import sys

from pop_nb.cli.main import main

sys.exit(main())
