from libs.runtime.service import main
from services.ingest.app import create_app

main("ingest", create_app, "ingest_port")
