from pathlib import Path

import pytest
from pycam_app import config

APP = Path(__file__).resolve().parents[2] / "app"


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    cfg = config.load(tmp_path / "nope.toml")
    assert cfg == config.Config()
    assert cfg.web.port == 8080 and cfg.storage.data_dir == "/data/app"
    assert cfg.capture.source == "auto" and cfg.encoder.name == "auto"


def test_shipped_default_toml_matches_builtin_defaults() -> None:
    assert config.load(APP / "config" / "default.toml") == config.Config()


def test_readme_documents_every_key() -> None:
    readme = (APP / "README.md").read_text()
    missing = [key for key, *_ in config.describe() if f"`{key}`" not in readme]
    assert not missing, f"keys not documented in app/README.md: {missing}"


def test_qemu_board_values(tmp_path: Path) -> None:
    p = tmp_path / "app.toml"
    p.write_text(
        '[capture]\nsource = "v4l2"\ndevice = "/dev/video0"\n'
        "[main]\nwidth = 640\nheight = 360\nfps = 10\n[sub]\nwidth = 320\nheight = 180\nfps = 5\n"
        '[encoder]\nname = "libx264"\n[web]\nport = 8080\n[storage]\ndata_dir = "/data/app"\n'
    )
    cfg = config.load(p)
    assert (cfg.main.width, cfg.main.height, cfg.main.fps) == (640, 360, 10.0)
    assert cfg.sub.fps == 5.0 and isinstance(cfg.sub.fps, float)
    assert cfg.encoder.name == "libx264"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[capture]\nsource = "webcam"',
            "capture.source: 'webcam' is not one of auto, picamera2, v4l2, v4l2-ffmpeg, synthetic",
        ),
        ("[capture]\nsorce = 1", "unknown key capture.sorce; allowed: device, input_format, source"),
        ("[main]\nfps = 0", "main.fps: 0 is out of range"),
        ('[main]\nwidth = "640"', "main.width: expected an integer"),
        ("[main]\nwidth = 641", "must be even"),
        ("[sub]\nwidth = 4000\nheight = 2000", "cannot be larger than the main stream"),
        ("[web]\nport = 70000", "web.port: 70000 is out of range"),
        ("[recording]\nevents = 1", "recording.events: expected true or false"),
        ("[nonsense]\na = 1", "unknown key nonsense"),
        ("capture = 3", "capture: expected a table"),
        ("[main\n", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    p = tmp_path / "app.toml"
    p.write_text(toml)
    with pytest.raises(config.ConfigError) as e:
        config.load(p)
    assert message in str(e.value)
    assert str(p) in str(e.value)


def test_cli_check_and_print(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pycam_app import cli

    bad = tmp_path / "bad.toml"
    bad.write_text('[encoder]\nname = "nvenc"')
    assert cli.main(["--config", str(bad), "--check-config"]) == 2
    assert "encoder.name" in capsys.readouterr().err
    assert cli.main(["--config", str(tmp_path / "none.toml"), "--print-config"]) == 0
    assert config.from_dict(__import__("tomllib").loads(capsys.readouterr().out)) == config.Config()
