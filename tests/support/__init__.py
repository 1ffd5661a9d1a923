"""What the tests (and bench/) share, none of it a test: the loopback sshd servers (:mod:`.sshd`), sample projects
and CLI runs (:mod:`.helpers`, with the test clock), a cuttable TCP forwarder (:mod:`.netcut`), the example stack
(:mod:`.stackkit`) and the TUI's fake hosts (:mod:`.tuikit`).  A test module never imports another test module."""
