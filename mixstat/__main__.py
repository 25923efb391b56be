from mixstat.cli import main

raise SystemExit(main())
