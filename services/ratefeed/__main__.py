from services.ratefeed.app import main
from shared.settings import Settings

main(Settings.for_program("python -m services.ratefeed"))
