from pycam.cli import main

raise SystemExit(main())
