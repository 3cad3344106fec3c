"""`shopagent calibrate` as a script (same options; see `shopagent calibrate --help`)."""

import sys

from shopagent.cli import main

if __name__ == "__main__":
    main(["calibrate", *sys.argv[1:]])
