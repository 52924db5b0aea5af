"""``python -m packager``: the airgap command line."""

from packager.cli.app import main

main()
