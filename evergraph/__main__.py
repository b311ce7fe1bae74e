from evergraph.cli import main

main()
