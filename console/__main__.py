"""`python -m console` runs the same command line as `tradeconsole`."""

from console.cli.main import main

raise SystemExit(main())
