from driftwise.cli import main

main()
