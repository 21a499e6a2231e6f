from tinyedge.cli import main

main()
