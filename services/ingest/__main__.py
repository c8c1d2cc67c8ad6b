from services.ingest.app import main
from shared.settings import Settings

main(Settings.for_program("python -m services.ingest"))
