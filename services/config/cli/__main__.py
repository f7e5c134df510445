from services.config.cli import main

main()
