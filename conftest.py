# pytester drives the plugin in inner pytest runs (tests/plugin).
pytest_plugins = ["pytester"]
