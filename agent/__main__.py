"""`python -m agent serve|chat`: the same commands as `shopagent serve|chat`."""

from shopagent.cli import main

if __name__ == "__main__":
    main()
