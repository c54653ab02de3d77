"""`python -m chatmodels_langchain`: the command line (see `chatmodels_langchain.cli`)."""

from chatmodels_langchain.cli import main

raise SystemExit(main())
