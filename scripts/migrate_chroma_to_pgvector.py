"""`shopagent migrate-chroma` as a script (same options; see `shopagent migrate-chroma --help`)."""

import sys

from shopagent.cli import main

if __name__ == "__main__":
    main(["migrate-chroma", *sys.argv[1:]])
