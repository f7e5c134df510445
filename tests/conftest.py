pytest_plugins = ["libs.testing.fixtures"]
