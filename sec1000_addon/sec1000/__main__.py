"""Entry point for `python -m sec1000`."""

from sec1000.cli import main

raise SystemExit(main())
