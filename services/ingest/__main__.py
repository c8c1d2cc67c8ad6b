from services.ingest.app import main
from shared.settings import Settings

main(Settings.from_env())
