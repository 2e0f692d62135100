"""The watch tool (`python -m services.watch`, `classrec-watch`): figures, table, follow, command line."""
