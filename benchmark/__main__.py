from benchmark.runtime import choose_wait_policy

choose_wait_policy()  # before anything imports torch

from benchmark.cli import main  # noqa: E402

raise SystemExit(main())
