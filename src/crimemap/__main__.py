"""``python -m crimemap`` runs the command line."""

from crimemap.cli import main

main()
