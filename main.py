"""Start CycleGAN Studio: ``python main.py`` (see ``python main.py --help`` for the smoke mode)."""

import sys

from gui.app import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
