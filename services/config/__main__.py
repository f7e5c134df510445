from libs.runtime.service import main
from services.config.app import create_app

main("config", create_app, "config_port")
