"""`shopagent evaluate` as a script (same options; see `shopagent evaluate --help`)."""

import sys

from shopagent.cli import main

if __name__ == "__main__":
    main(["evaluate", *sys.argv[1:]])
