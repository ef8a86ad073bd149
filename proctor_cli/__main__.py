import sys

from proctor_cli.main import main

sys.exit(main())
