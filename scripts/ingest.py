"""`shopagent ingest` as a script (same options; see `shopagent ingest --help`)."""

import sys

from shopagent.cli import main

if __name__ == "__main__":
    main(["ingest", *sys.argv[1:]])
