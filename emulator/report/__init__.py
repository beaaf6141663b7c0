"""Reports of runs that are files to keep and share (``html``: pages with pictures)."""
