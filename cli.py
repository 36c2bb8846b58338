#!/usr/bin/env python
"""bsattack command line: the blind-spot attack paper (ICLR 2019), reproduced.

Every command only parses options and calls the library; `python cli.py COMMAND --help`.
The same commands are installed as `bsattack` by `pip install .` (see bsattack/cli.py).
"""
import sys

from bsattack.cli import main

if __name__ == "__main__":
    sys.exit(main())
