from compactrig.cli import main

raise SystemExit(main())
