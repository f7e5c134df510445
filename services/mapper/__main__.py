from libs.runtime.service import main
from services.mapper.app import create_app

main("mapper", create_app, "mapper_port")
