"""`python -m bnviz`: the command line (see bnviz.cli)."""

from .cli import main

raise SystemExit(main())
