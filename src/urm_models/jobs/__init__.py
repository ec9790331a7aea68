"""The jobs the command line starts: the refresh (papermill over the notebooks, then publishing)
and ``urm forget`` (erasing users everywhere)."""
