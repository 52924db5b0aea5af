"""``python -m packager``: the airgap command line."""

from packager.cli.entry import main

main()
