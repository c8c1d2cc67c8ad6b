from services.ratefeed.app import main

main()
