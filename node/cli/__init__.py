"""The ``parta`` command line: a dispatcher plus subcommands registered by entry points."""
