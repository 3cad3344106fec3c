"""`shopagent search` as a script (same options; see `shopagent search --help`)."""

import sys

from shopagent.cli import main

if __name__ == "__main__":
    main(["search", *sys.argv[1:]])
