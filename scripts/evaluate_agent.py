"""`shopagent evaluate-agent` as a script (same options; see `shopagent evaluate-agent --help`)."""

import sys

from shopagent.cli import main

if __name__ == "__main__":
    main(["evaluate-agent", *sys.argv[1:]])
