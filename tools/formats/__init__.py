"""Writers that turn a Roam JSON export (a list of page dicts) into the other source formats.

Each module has ``write(pages, dest, graph_name)``; the seeds under ``seeds/`` and the
benchmark's per-reader figures are produced with them.
"""
