"`python -m matdl_nb ...` runs the `matdl` command (see nbs/92_cli.ipynb); written by hand, like __init__.py."
import sys

from matdl_nb.cli import main

if __name__ == "__main__": sys.exit(main())
