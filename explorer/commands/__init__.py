"""Sub-commands of the ``explorer`` command line, one module each (see ``explorer.cli``)."""
