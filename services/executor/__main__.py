from libs.runtime.service import main
from services.executor.app import create_app

main("executor", create_app, "executor_port")
