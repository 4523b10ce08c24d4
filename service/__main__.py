"""`python -m service` runs the gradschool CLI."""

from service.cli import main

main()
