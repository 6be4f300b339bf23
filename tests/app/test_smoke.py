from pycam_app import config


def test_defaults_load() -> None:
    assert config.load(None).web.port == 8080
