"""``python -m tgdmat``: the command line (see :mod:`tgdmat.cli`)."""
from tgdmat.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
