"""The ``posemu`` command line and its human report."""
