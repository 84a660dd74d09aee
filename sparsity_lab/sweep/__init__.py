"""Many configs at once: ``runner.run_many`` orders the jobs (``costs``: longest first) and hands them to a
``pool`` of worker processes forked from a ``fork_server``; ``job`` runs one job; ``files`` reads sweep files.
Kept free of imports so that ``fork_server`` can start before torch is imported."""
