"""One module per pipeline stage: each declares its ``COMMAND`` (the ``rocksr`` subcommand a
Snakemake rule of the same name runs), ``add_arguments`` and ``run``."""
