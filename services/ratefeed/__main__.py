from services.ratefeed.app import main
from shared.settings import Settings

main(Settings.from_env())
